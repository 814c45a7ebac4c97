#!/usr/bin/env node
// selftest.mjs (`npm test`): proves gossip-peer.mjs and discv5-probe.mjs work, without the Rust node, on loopback.
//  1. op-node message-id vectors (embedded upstream values, plus core/testdata/op-node/gossip_message_id.json or
//     $OP_P2P_VECTORS/gossip_message_id.json when present) through lib/opstack.mjs; strict snappy edge cases.
//  2. Two gossip peers: B dials A and publishes on `test` (raw 0102030405 and its snappy form 05100102030405) and on
//     /optimism/901/3/blocks (a snappy-compressed payload); A receives all three. Both sides must report the same
//     msgId, equal to the vectors and to a sha256 computed here inline from the known uncompressed bytes. A 4th,
//     5 MiB incompressible block proves the 10 MiB frame limit is in force (js-libp2p's default is 4 MiB).
//  3. discv5: a --serve node (chain 901, key K) and a probe given a *stale* ENR for K (seq 1, no opstack): the probe
//     must print opstack chain 901 and the served seq, so the record it prints came over the wire, not from the arg.
//  4. Refusals: non-loopback --dial and non-loopback ENRs exit with code 2.
// Bounded: everything is killed and the run fails after 55 s.

import { spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import assert from 'node:assert/strict'
import {
  installPolyfills, opMessageId, snappyCompress, snappyDecodeStrict, toHex, fromHex, encodeOpstack, decodeOpstack
} from './lib/opstack.mjs'

installPolyfills()
const { generateKeyPair } = await import('@libp2p/crypto/keys')
const { peerIdFromPrivateKey } = await import('@libp2p/peer-id')
const { SignableENR } = await import('@chainsafe/enr')

const HERE = dirname(fileURLToPath(import.meta.url))
const children = new Set()
const tmp = mkdtempSync(join(tmpdir(), 'op-p2p-interop-'))
const globalTimer = setTimeout(() => {
  console.error('selftest: FAILED, global 55 s timeout')
  for (const c of children) c.kill('SIGKILL')
  process.exit(1)
}, 55_000)

let passed = 0
function ok (name) { passed++; console.log(`ok ${passed} - ${name}`) }

/** Spawns a script with a piped stdin (closing it stops the child) and collects its JSON lines. */
function run (script, args) {
  const proc = spawn(process.execPath, [join(HERE, script), ...args], { stdio: ['pipe', 'pipe', 'pipe'] })
  children.add(proc)
  const lines = []
  const waiters = []
  let buf = ''
  let stderr = ''
  proc.stdout.on('data', (d) => {
    buf += d
    let i
    while ((i = buf.indexOf('\n')) >= 0) {
      const text = buf.slice(0, i)
      buf = buf.slice(i + 1)
      let obj
      try { obj = JSON.parse(text) } catch { throw new Error(`${script}: non-JSON stdout line: ${text}`) }
      lines.push(obj)
      for (const w of [...waiters]) if (w.pred(obj)) { waiters.splice(waiters.indexOf(w), 1); w.resolve(obj) }
    }
  })
  proc.stderr.on('data', (d) => { stderr += d })
  const exited = new Promise((resolve) => proc.on('exit', (code) => { children.delete(proc); resolve(code) }))
  return {
    proc,
    lines,
    exited,
    stderr: () => stderr,
    waitFor (pred, ms, what) {
      const found = lines.find(pred)
      if (found) return Promise.resolve(found)
      return new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`${script}: timed out waiting for ${what}; lines=${JSON.stringify(lines)} stderr=${stderr}`)), ms)
        waiters.push({ pred, resolve: (o) => { clearTimeout(t); resolve(o) } })
      })
    },
    stop () { proc.stdin.end() }
  }
}

/** The id computed inline, independently of lib/opstack.mjs's snappy detection. */
function inlineId (domainByte, topic, body) {
  const t = Buffer.from(topic)
  const len = Buffer.alloc(8)
  len.writeBigUInt64LE(BigInt(t.length))
  return createHash('sha256').update(Buffer.from([domainByte, 0, 0, 0])).update(len).update(t).update(body)
    .digest().subarray(0, 20).toString('hex')
}

try {
  // ---- 1. message-id vectors --------------------------------------------------------------------------------
  const UPSTREAM = [
    { topic: 'test', data: '0102030405', id: 'b6897dcba59347fedcd694cc0f5117093c9dc727', snappy: false },
    { topic: 'test', data: '05100102030405', id: 'adbe547b27f41294a08a09210a5e8531e83cdc16', snappy: true }
  ]
  for (const v of UPSTREAM) {
    const r = opMessageId(v.topic, fromHex(v.data))
    assert.equal(toHex(r.id), v.id)
    assert.equal(r.snappyValid, v.snappy)
  }
  assert.equal(inlineId(0, 'test', fromHex('0102030405')), UPSTREAM[0].id)
  assert.equal(inlineId(1, 'test', fromHex('0102030405')), UPSTREAM[1].id)
  ok('upstream op-node message-id vectors (lib and inline)')
  // The op-node vectors the Rust core tests against, kept in the repository.
  const vecDir = process.env.OP_P2P_VECTORS ?? join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'core', 'testdata', 'op-node')
  const vecFile = join(vecDir, 'gossip_message_id.json')
  const vs = JSON.parse(readFileSync(vecFile, 'utf8')).vectors
  assert.ok(vs.length > 0, `no vectors in ${vecFile}`)
  for (const v of vs) {
    assert.equal(toHex(opMessageId(v.topic, fromHex(v.data_hex)).id), v.message_id_hex, `vector ${v.topic} ${v.data_hex}`)
  }
  ok(`${vs.length} vectors from ${vecFile}`)
  // strict snappy: the declared length must match the stream exactly (Go semantics), and > 10 MiB is not snappy
  assert.equal(snappyDecodeStrict(fromHex('06100102030405')), null)
  assert.equal(snappyDecodeStrict(fromHex('04100102030405')), null)
  assert.equal(opMessageId('test', fromHex('80808006')).snappyValid, false) // declares 12 MiB
  assert.equal(toHex(encodeOpstack(901)), '850700')
  assert.equal(toHex(encodeOpstack(8453)), '854200')
  assert.deepEqual(decodeOpstack(fromHex('dcefa80500ff')), { chainId: 11155420, version: 0 }) // trailing ignored
  ok('strict snappy length rules and opstack encoding')

  // ---- 2. two gossip peers ------------------------------------------------------------------------------------
  const blocksTopic = '/optimism/901/3/blocks'
  const payload = Buffer.alloc(3000)
  for (let i = 0; i < payload.length; i++) payload[i] = (i * 7 + (i >> 5)) & 0xff // compressible, not trivial
  const compressed = snappyCompress(payload)
  const files = {
    raw: join(tmp, 'raw.bin'), snap: join(tmp, 'snap.bin'), block: join(tmp, 'block.bin'), big: join(tmp, 'big.bin')
  }
  // > 4 MiB on the wire: fails unless the 10 MiB RPC limit (maxInboundDataLength) is configured
  const bigPayload = Buffer.alloc(5 * 1024 * 1024)
  let x = 0x12345678
  for (let i = 0; i < bigPayload.length; i++) { x = (Math.imul(x, 1103515245) + 12345) >>> 0; bigPayload[i] = x >>> 24 }
  const bigCompressed = snappyCompress(bigPayload)
  writeFileSync(files.big, bigCompressed)
  writeFileSync(files.raw, fromHex('0102030405'))
  writeFileSync(files.snap, fromHex('05100102030405'))
  writeFileSync(files.block, compressed)
  const expected = [
    { topic: 'test', id: UPSTREAM[0].id, hex: '0102030405' },
    { topic: 'test', id: UPSTREAM[1].id, hex: '05100102030405' },
    { topic: blocksTopic, id: inlineId(1, blocksTopic, payload), hex: toHex(compressed) },
    { topic: blocksTopic, id: inlineId(1, blocksTopic, bigPayload), sha256: createHash('sha256').update(bigCompressed).digest('hex'), len: bigCompressed.length }
  ]

  const keyB = await generateKeyPair('secp256k1')
  const keyBHex = toHex(keyB.raw)
  const peerIdB = peerIdFromPrivateKey(keyB).toString()

  const a = run('gossip-peer.mjs', ['--topic', 'test', '--topic', blocksTopic, '--exit-after-messages', '4', '--timeout-ms', '40000'])
  const aListen = await a.waitFor((o) => o.event === 'listening', 10_000, 'A listening')
  assert.match(aListen.peerId, /^16Uiu2HA/)
  assert.match(aListen.addrs[0], /^\/ip4\/127\.0\.0\.1\/tcp\/\d+\/p2p\/16Uiu2HA/)
  const b = run('gossip-peer.mjs', [
    '--key', keyBHex, '--topic', 'test', '--topic', blocksTopic, '--dial', aListen.addrs[0],
    '--publish', `test=${files.raw}`, '--publish', `test=${files.snap}`, '--publish', `${blocksTopic}=${files.block}`,
    '--publish', `${blocksTopic}=${files.big}`,
    '--timeout-ms', '40000'
  ])
  const bListen = await b.waitFor((o) => o.event === 'listening', 10_000, 'B listening')
  assert.equal(bListen.peerId, peerIdB, '--key gives the peer id derived from that secp256k1 key')
  ok('--key <hex> yields the expected 16Uiu2HA... peer id')
  await a.waitFor((o) => o.event === 'subscribed' && o.peer === peerIdB && o.topic === blocksTopic, 15_000, 'A sees B subscribe')
  const aCode = await Promise.race([a.exited, new Promise((resolve) => setTimeout(() => resolve('timeout'), 25_000))])
  assert.equal(aCode, 0, `A exits 0 after 4 messages; lines=${JSON.stringify(a.lines)} stderr=${a.stderr()}`)
  const received = a.lines.filter((o) => o.event === 'message')
  const published = b.lines.filter((o) => o.event === 'published')
  assert.equal(published.length, 4, `B published 4; lines=${JSON.stringify(b.lines)}`)
  assert.equal(received.length, 4)
  for (const exp of expected) {
    const p = published.find((o) => o.msgId === exp.id)
    const r = received.find((o) => o.msgId === exp.id)
    assert.ok(p, `B published id ${exp.id}`)
    assert.ok(r, `A received id ${exp.id}`)
    assert.equal(p.topic, exp.topic)
    assert.equal(r.topic, exp.topic)
    assert.equal(r.from, peerIdB)
    if (exp.hex !== undefined) {
      assert.equal(r.dataHex, exp.hex)
      assert.equal(r.sha256, createHash('sha256').update(fromHex(exp.hex)).digest('hex'))
    } else {
      assert.equal(r.dataHex, undefined, 'no dataHex above --max-hex')
      assert.equal(r.dataLen, exp.len)
      assert.equal(r.sha256, exp.sha256)
    }
    assert.equal(r.sha256, p.sha256)
  }
  assert.equal(received.find((o) => o.msgId === expected[2].id).snappy, true)
  ok('gossip: A and B report the same msgIds, equal to the vectors and to an inline sha256 (snappy blocks on /optimism/901/3/blocks, one > 4 MiB)')
  b.stop()
  assert.equal(await b.exited, 0, 'B exits 0 on stdin close')
  ok('gossip peer exits 0 when its stdin closes')

  // ---- 3. discv5 probe against a --serve node -----------------------------------------------------------------
  const s = run('discv5-probe.mjs', ['--serve', '--chain-id', '901', '--key', keyBHex, '--tcp', '9222', '--timeout-ms', '30000'])
  const serving = await s.waitFor((o) => o.event === 'serving', 10_000, 'serving')
  assert.equal(serving.peerId, peerIdB, 'discv5 --key gives the same identity as the gossip peer')
  assert.deepEqual(serving.opstack, { chainId: 901, version: 0 })
  assert.ok(serving.seq > 1)
  // a stale record for the same key: seq 1, no opstack entry, same address
  const stale = SignableENR.createFromPrivateKey(keyB, {})
  stale.ip = '127.0.0.1'
  stale.udp = serving.udp
  assert.ok(BigInt(serving.seq) > stale.seq)
  const p = run('discv5-probe.mjs', ['--enr', stale.encodeTxt(), '--timeout-ms', '15000'])
  const rec = await p.waitFor((o) => o.event === 'enr' || o.event === 'error', 16_000, 'probe record')
  assert.equal(rec.event, 'enr', JSON.stringify(p.lines))
  assert.equal(await p.exited, 0)
  assert.equal(rec.nodeId, serving.nodeId)
  assert.equal(rec.seq, serving.seq, 'the printed record is the served one (over the wire), not the stale arg')
  assert.deepEqual(rec.opstack, { chainId: 901, version: 0 })
  assert.equal(rec.ip, '127.0.0.1')
  assert.equal(rec.udp, serving.udp)
  assert.equal(rec.tcp, 9222)
  assert.equal(rec.peerId, peerIdB)
  assert.ok(p.lines.some((o) => o.event === 'pong'), 'probe got a PONG')
  await s.waitFor((o) => o.event === 'enr_added', 5_000, 'serve adds the probe').catch(() => {}) // informative only
  s.stop()
  assert.equal(await s.exited, 0)
  ok('discv5: probe decodes opstack chain 901 from the record received over the wire (stale arg had none)')

  // ---- 4. refusals --------------------------------------------------------------------------------------------
  const bad1 = run('gossip-peer.mjs', ['--dial', '/ip4/8.8.8.8/tcp/9222', '--timeout-ms', '5000'])
  assert.equal(await bad1.exited, 2)
  const bad2 = run('gossip-peer.mjs', ['--dial', '/dns4/localhost/tcp/9222', '--timeout-ms', '5000'])
  assert.equal(await bad2.exited, 2)
  const realBase = 'enr:-J24QDXyyxvQYsd0yfsN0cRr1lZ1N11zGTplMNlW4xNEc7LkPXh0NAJ9iSOVdRO95GPYAIc6xmyoCCG6_0JxdL3a0zaGAYiOoAjFgmlkgnY0gmlwhAPckbGHb3BzdGFja4OFQgCJc2VjcDI1NmsxoQJwoS7tzwxqXSyFL7g0JM-KWVbgvjfB8JA__T7yY_cYboN0Y3CCJAaDdWRwgiQG'
  const bad3 = run('discv5-probe.mjs', ['--enr', realBase, '--timeout-ms', '5000'])
  assert.equal(await bad3.exited, 2)
  assert.match(bad3.stderr(), /non-loopback/)
  ok('non-loopback dial targets and ENRs are refused with exit code 2')

  console.log(`# all ${passed} checks passed`)
  clearTimeout(globalTimer)
  rmSync(tmp, { recursive: true, force: true })
  process.exit(0)
} catch (e) {
  console.error(`selftest: FAILED: ${e.stack ?? e}`)
  for (const c of children) c.kill('SIGKILL')
  rmSync(tmp, { recursive: true, force: true })
  process.exit(1)
}
