// Shared helpers for the interop scripts: the Node 20 polyfill, op-node's gossip message id, strict raw-snappy
// decoding, the ENR `opstack` entry, loopback checks and JSON-line output. Written independently of the Rust
// code under test, from op-node's rules (message id: core/src/gossip/wire.rs; ENR `opstack` entry: core/src/discovery/enr.rs) and Go's snappy.

import { createHash } from 'node:crypto'
import snappy from 'snappyjs'

/** Node 20 lacks Promise.withResolvers (Node 22+); some transitive libp2p deps call it. */
export function installPolyfills () {
  if (typeof Promise.withResolvers !== 'function') {
    Promise.withResolvers = function withResolvers () {
      let resolve, reject
      const promise = new this((res, rej) => { resolve = res; reject = rej })
      return { promise, resolve, reject }
    }
  }
}
installPolyfills()

/** op-node's limit on a decompressed gossip payload and on a gossipsub RPC frame (spec §1.2, §6). */
export const MAX_GOSSIP_SIZE = 10 * 1024 * 1024

const DOMAIN_VALID_SNAPPY = Uint8Array.from([1, 0, 0, 0])
const DOMAIN_INVALID_SNAPPY = Uint8Array.from([0, 0, 0, 0])

/**
 * Length declared by a raw snappy block's header (Go `snappy.DecodedLen`): a uvarint that must fit in 32 bits
 * (and in 31 bits, as on 32-bit Go). Returns { len, headerLen } or null if the header is corrupt.
 */
export function snappyDecodedLen (src) {
  let v = 0n
  let shift = 0n
  for (let i = 0; i < src.length && i < 10; i++) {
    const b = src[i]
    v |= BigInt(b & 0x7f) << shift
    if (b < 0x80) {
      if (i === 9 && b > 1) return null // uvarint overflow
      if (v > 0x7fffffffn) return null
      return { len: Number(v), headerLen: i + 1 }
    }
    shift += 7n
  }
  return null
}

/**
 * Walks a raw snappy block with Go's strict rules (every literal and copy stays inside the source and the declared
 * output, copy offsets point inside what is already written, the output ends exactly at the declared length).
 * snappyjs skips some of these checks, so this walk decides validity and snappyjs only produces the bytes.
 */
function snappyBlockIsStrictlyValid (src, headerLen, declared) {
  let s = headerLen
  let d = 0
  while (s < src.length) {
    const tag = src[s]
    switch (tag & 0x03) {
      case 0: { // literal
        let x = tag >>> 2
        if (x < 60) {
          s += 1
        } else {
          const extra = x - 59 // 1..4 length bytes
          s += 1 + extra
          if (s > src.length) return false
          x = 0
          for (let k = 0; k < extra; k++) x += src[s - extra + k] * 2 ** (8 * k)
        }
        const length = x + 1
        if (length > declared - d || length > src.length - s) return false
        s += length
        d += length
        continue
      }
      case 1: { // copy, 1-byte offset
        s += 2
        if (s > src.length) return false
        const length = 4 + ((src[s - 2] >>> 2) & 0x07)
        const offset = ((src[s - 2] & 0xe0) << 3) | src[s - 1]
        if (offset <= 0 || d < offset || length > declared - d) return false
        d += length
        continue
      }
      case 2: { // copy, 2-byte offset
        s += 3
        if (s > src.length) return false
        const length = 1 + (src[s - 3] >>> 2)
        const offset = src[s - 2] | (src[s - 1] << 8)
        if (offset <= 0 || d < offset || length > declared - d) return false
        d += length
        continue
      }
      default: { // copy, 4-byte offset
        s += 5
        if (s > src.length) return false
        const length = 1 + (src[s - 5] >>> 2)
        const offset = src[s - 4] + src[s - 3] * 2 ** 8 + src[s - 2] * 2 ** 16 + src[s - 1] * 2 ** 24
        if (offset <= 0 || d < offset || length > declared - d) return false
        d += length
      }
    }
  }
  return d === declared
}

/**
 * Decodes a raw snappy block if it is valid (Go semantics) and declares at most `maxLen` bytes; else returns null.
 * The declared length is checked before anything is allocated.
 */
export function snappyDecodeStrict (data, maxLen = MAX_GOSSIP_SIZE) {
  const hdr = snappyDecodedLen(data)
  if (hdr === null || hdr.len > maxLen) return null
  if (!snappyBlockIsStrictlyValid(data, hdr.headerLen, hdr.len)) return null
  try {
    const out = snappy.uncompress(data, maxLen)
    return out.length === hdr.len ? out : null
  } catch {
    return null
  }
}

/** Raw snappy block compression (no framing), as op-node puts into gossip messages. */
export function snappyCompress (data) {
  return new Uint8Array(snappy.compress(data))
}

/** u64 little-endian of a non-negative safe integer. */
function u64le (n) {
  const b = new Uint8Array(8)
  new DataView(b.buffer).setBigUint64(0, BigInt(n), true)
  return b
}

/**
 * op-node's gossipsub message id (spec §3, with the topic ⚠):
 * sha256(domain || u64_le(len(topic)) || topic || body)[0..20], where body/domain are the snappy-decoded data and
 * 01000000 if the data decodes (declared length ≤ 10 MiB), else the raw data and 00000000.
 * Returns { id: Uint8Array(20), snappyValid: boolean }.
 */
export function opMessageId (topic, data) {
  const topicBytes = new TextEncoder().encode(topic)
  const decoded = snappyDecodeStrict(data, MAX_GOSSIP_SIZE)
  const h = createHash('sha256')
  h.update(decoded !== null ? DOMAIN_VALID_SNAPPY : DOMAIN_INVALID_SNAPPY)
  h.update(u64le(topicBytes.length))
  h.update(topicBytes)
  h.update(decoded !== null ? decoded : data)
  return { id: new Uint8Array(h.digest().subarray(0, 20)), snappyValid: decoded !== null }
}

export function toHex (bytes) {
  return Buffer.from(bytes).toString('hex')
}

export function sha256Hex (bytes) {
  return createHash('sha256').update(bytes).digest('hex')
}

/** Strict hex parser (optional 0x prefix, even length); throws on anything else. */
export function fromHex (text) {
  const s = text.startsWith('0x') ? text.slice(2) : text
  if (s.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(s)) throw new Error(`not hex: ${text}`)
  return new Uint8Array(Buffer.from(s, 'hex'))
}

/** LEB128 unsigned varint (Go binary.PutUvarint) of a non-negative integer or bigint. */
export function uvarintEncode (value) {
  let v = BigInt(value)
  if (v < 0n) throw new Error('uvarint of a negative number')
  const out = []
  while (v >= 0x80n) {
    out.push(Number(v & 0x7fn) | 0x80)
    v >>= 7n
  }
  out.push(Number(v))
  return Uint8Array.from(out)
}

/** Go binary.Uvarint: returns { value: bigint, len } or null on truncation / 64-bit overflow. */
export function uvarintDecode (bytes, offset = 0) {
  let v = 0n
  let shift = 0n
  for (let i = 0; i < 10 && offset + i < bytes.length; i++) {
    const b = bytes[offset + i]
    if (i === 9 && b > 1) return null
    v |= BigInt(b & 0x7f) << shift
    if (b < 0x80) return { value: v, len: i + 1 }
    shift += 7n
  }
  return null
}

/** Contents of the ENR `opstack` RLP byte string: uvarint(chain id) || uvarint(version) (spec §7.1). */
export function encodeOpstack (chainId, version = 0) {
  const a = uvarintEncode(chainId)
  const b = uvarintEncode(version)
  const out = new Uint8Array(a.length + b.length)
  out.set(a, 0)
  out.set(b, a.length)
  return out
}

/**
 * Decodes the `opstack` value as @chainsafe/enr stores it (the RLP string's contents). Trailing bytes are ignored
 * as op-node does. Returns { chainId, version } (numbers when safe, else decimal strings) or throws.
 */
export function decodeOpstack (value) {
  if (!(value instanceof Uint8Array)) throw new Error('opstack entry is not an RLP byte string')
  const c = uvarintDecode(value, 0)
  if (c === null) throw new Error('opstack: bad chain id uvarint')
  const v = uvarintDecode(value, c.len)
  if (v === null) throw new Error('opstack: bad version uvarint')
  const num = (x) => (x <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(x) : x.toString())
  return { chainId: num(c.value), version: num(v.value) }
}

/** True only for the IPv4/IPv6 loopback literals these probes may talk to. */
export function isLoopbackIp (ip) {
  return ip === '127.0.0.1' || ip === '::1'
}

/** Prints one JSON object on one stdout line (bigints as decimal strings). */
export function emit (obj) {
  process.stdout.write(JSON.stringify(obj, (_k, v) => (typeof v === 'bigint' ? v.toString() : v)) + '\n')
}

/** Parses a 32-byte secp256k1 private key given as hex; throws on anything else. */
export function parseSecp256k1Hex (text) {
  const b = fromHex(text)
  if (b.length !== 32) throw new Error(`secp256k1 private key must be 32 bytes, got ${b.length}`)
  return b
}

/**
 * Installs the process lifetime rules shared by the scripts: exit(0) after `timeoutMs`, and on stdin close (so a
 * test harness that dies or closes our stdin never leaves us running). `cleanup` is awaited (bounded) first.
 */
export function installLifetime (timeoutMs, cleanup, { watchStdin = true } = {}) {
  let stopping = false
  const stop = async (reason, code = 0) => {
    if (stopping) return
    stopping = true
    emit({ event: 'exit', reason })
    const hard = setTimeout(() => process.exit(code), 2000)
    hard.unref()
    try { await cleanup() } catch { /* best effort */ }
    process.exit(code)
  }
  const t = setTimeout(() => { stop('timeout') }, timeoutMs)
  t.unref()
  // keep the process alive until the timeout even if nothing else holds the loop
  const keepAlive = setInterval(() => {}, 1 << 30)
  if (watchStdin && !process.stdin.isTTY) {
    process.stdin.on('end', () => stop('stdin-closed'))
    process.stdin.on('close', () => stop('stdin-closed'))
    process.stdin.on('error', () => stop('stdin-closed'))
    process.stdin.resume()
  }
  process.on('SIGINT', () => stop('signal'))
  process.on('SIGTERM', () => stop('signal'))
  return { stop, keepAlive }
}
