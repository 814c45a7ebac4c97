//! `--p2p.bootnodes-file`: a text file of bootnodes, one `enr:` or `enode://` entry per line.
//! Blank lines and lines starting with `#` (after leading whitespace) are skipped; surrounding
//! whitespace is trimmed. The file is read with a size bound ([`MAX_BOOTNODES_FILE_BYTES`])
//! before anything is allocated for it, and at most [`MAX_BOOTNODES_FILE_ENTRIES`] entries are
//! accepted. Every error names the file, and a bad entry also its line (from 1).

use std::io::Read;
use std::path::{Path, PathBuf};

use op_p2p_core::discovery::{Bootnode, BootnodeError};

/// Largest bootnodes file read (bytes): far above any real list (a record is under 400 bytes).
pub const MAX_BOOTNODES_FILE_BYTES: u64 = 256 * 1024;
/// Most entries accepted from one file.
pub const MAX_BOOTNODES_FILE_ENTRIES: usize = 256;

/// One entry of a bootnodes file, as written (trimmed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootnodeLine {
    /// Line number, from 1.
    pub line: usize,
    /// The entry text.
    pub text: String,
}

/// Why a bootnodes file cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BootnodesFileError {
    /// The file cannot be opened or read.
    #[error("bootnodes file {path}: cannot read")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file is larger than [`MAX_BOOTNODES_FILE_BYTES`].
    #[error("bootnodes file {path} is larger than {MAX_BOOTNODES_FILE_BYTES} bytes")]
    TooLarge {
        /// The file.
        path: PathBuf,
    },
    /// The file is not UTF-8 text.
    #[error("bootnodes file {path} is not UTF-8 text")]
    NotText {
        /// The file.
        path: PathBuf,
    },
    /// More than [`MAX_BOOTNODES_FILE_ENTRIES`] entries.
    #[error("bootnodes file {path} has more than {MAX_BOOTNODES_FILE_ENTRIES} entries")]
    TooManyEntries {
        /// The file.
        path: PathBuf,
    },
    /// An entry does not parse.
    #[error("bootnodes file {path} line {line}: {source}")]
    Entry {
        /// The file.
        path: PathBuf,
        /// Line number, from 1.
        line: usize,
        /// Why.
        #[source]
        source: BootnodeError,
    },
}

/// Splits bootnodes-file text into its entries (see the module docs), bounded in count.
pub fn parse_bootnodes_text(
    path: &Path,
    text: &str,
) -> Result<Vec<BootnodeLine>, BootnodesFileError> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let entry = raw.trim();
        if entry.is_empty() || entry.starts_with('#') {
            continue;
        }
        if out.len() == MAX_BOOTNODES_FILE_ENTRIES {
            return Err(BootnodesFileError::TooManyEntries {
                path: path.to_owned(),
            });
        }
        out.push(BootnodeLine {
            line: i + 1,
            text: entry.to_owned(),
        });
    }
    Ok(out)
}

/// Reads a bootnodes file into its entries, unparsed (`op-p2p bootnodes check` reports each
/// bad entry instead of stopping at the first).
pub fn read_bootnodes_file(path: &Path) -> Result<Vec<BootnodeLine>, BootnodesFileError> {
    let read = |source| BootnodesFileError::Read {
        path: path.to_owned(),
        source,
    };
    let file = std::fs::File::open(path).map_err(read)?;
    let mut bytes = Vec::new();
    file.take(MAX_BOOTNODES_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(read)?;
    if bytes.len() as u64 > MAX_BOOTNODES_FILE_BYTES {
        return Err(BootnodesFileError::TooLarge {
            path: path.to_owned(),
        });
    }
    let text = String::from_utf8(bytes).map_err(|_| BootnodesFileError::NotText {
        path: path.to_owned(),
    })?;
    parse_bootnodes_text(path, &text)
}

/// Reads and parses a bootnodes file; the first bad entry is an error naming its line.
pub fn load_bootnodes_file(path: &Path) -> Result<Vec<Bootnode>, BootnodesFileError> {
    read_bootnodes_file(path)?
        .into_iter()
        .map(|l| {
            Bootnode::parse(&l.text).map_err(|source| BootnodesFileError::Entry {
                path: path.to_owned(),
                line: l.line,
                source,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use op_p2p_core::presets::OP_NODE_BOOTNODES;

    fn write(dir: &Path, name: &str, text: &[u8]) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn comments_blank_lines_and_whitespace_are_skipped() {
        let tmp = tempfile::tempdir().unwrap();
        let text = format!(
            "# Base\n\n   {}  \n\t# indented comment\n{}\r\n",
            OP_NODE_BOOTNODES[0], OP_NODE_BOOTNODES[3]
        );
        let p = write(tmp.path(), "b.txt", text.as_bytes());
        let lines = read_bootnodes_file(&p).unwrap();
        assert_eq!(
            lines,
            vec![
                BootnodeLine {
                    line: 3,
                    text: OP_NODE_BOOTNODES[0].into()
                },
                BootnodeLine {
                    line: 5,
                    text: OP_NODE_BOOTNODES[3].into()
                },
            ]
        );
        let parsed = load_bootnodes_file(&p).unwrap();
        assert_eq!(parsed.len(), 2);
        assert_eq!(parsed[1].to_string(), OP_NODE_BOOTNODES[3]);
        // An empty file (or only comments) is an empty list.
        let empty = write(tmp.path(), "e.txt", b"# nothing\n\n");
        assert!(load_bootnodes_file(&empty).unwrap().is_empty());
    }

    #[test]
    fn every_failure_is_typed_and_names_the_file_and_line() {
        let tmp = tempfile::tempdir().unwrap();
        let bad = write(
            tmp.path(),
            "bad.txt",
            format!("{}\n# ok\nenode://zz@1.2.3.4:1\n", OP_NODE_BOOTNODES[0]).as_bytes(),
        );
        match load_bootnodes_file(&bad) {
            Err(e @ BootnodesFileError::Entry { line: 3, .. }) => {
                let shown = e.to_string();
                assert!(shown.contains("bad.txt line 3"), "{shown}");
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            load_bootnodes_file(&tmp.path().join("missing.txt")),
            Err(BootnodesFileError::Read { .. })
        ));
        let big = write(
            tmp.path(),
            "big.txt",
            &vec![b'#'; MAX_BOOTNODES_FILE_BYTES as usize + 1],
        );
        assert!(matches!(
            read_bootnodes_file(&big),
            Err(BootnodesFileError::TooLarge { .. })
        ));
        // Exactly at the bound is read.
        let at = write(
            tmp.path(),
            "at.txt",
            &vec![b'#'; MAX_BOOTNODES_FILE_BYTES as usize],
        );
        assert!(read_bootnodes_file(&at).unwrap().is_empty());
        let binary = write(tmp.path(), "bin.txt", &[0xff, 0xfe, b'\n']);
        assert!(matches!(
            read_bootnodes_file(&binary),
            Err(BootnodesFileError::NotText { .. })
        ));
        let many = "x\n".repeat(MAX_BOOTNODES_FILE_ENTRIES + 1);
        let many = write(tmp.path(), "many.txt", many.as_bytes());
        assert!(matches!(
            read_bootnodes_file(&many),
            Err(BootnodesFileError::TooManyEntries { .. })
        ));
        let enough = "x\n".repeat(MAX_BOOTNODES_FILE_ENTRIES);
        let enough = write(tmp.path(), "enough.txt", enough.as_bytes());
        assert_eq!(
            read_bootnodes_file(&enough).unwrap().len(),
            MAX_BOOTNODES_FILE_ENTRIES
        );
    }
}
