#!/usr/bin/env node
// discv5-probe.mjs: an independent @chainsafe/discv5 node used to probe our node's discovery, or to be found by it.
// Loopback only: it binds 127.0.0.1 (or ::1) and refuses ENRs whose address is not loopback.
//
// Probe mode (default): node discv5-probe.mjs --enr <enr:...> [options]
//   Starts a discv5 node on 127.0.0.1:0 (own secp256k1 key), adds the ENR, PINGs the node at the ENR's ip/udp, then
//   asks it for its own record with FINDNODE distance 0, and prints the record it received over the wire, with the
//   `opstack` entry decoded (RLP byte string of uvarint(chain id) || uvarint(version)). A request that gets no answer
//   (RPC failure) is tried again until the timeout. Exits 0 once the record is printed; exits 1 on a wrong answer or
//   timeout (after an "error" line).
// Serve mode: node discv5-probe.mjs --serve --chain-id <n> [options]
//   Starts a discv5 node whose ENR carries ip 127.0.0.1, its udp port, `opstack` = (chain id, --opstack-version) and
//   optionally tcp; prints that ENR, then answers discv5 traffic until the timeout (exit 0) or stdin EOF (exit 0).
//
// Options:
//   --enr <enr:...>          the node to probe (probe mode, required) / a node to add to our table (serve mode).
//   --serve                  serve mode.
//   --chain-id <n>           serve mode: chain id for the `opstack` entry (required with --serve).
//   --opstack-version <n>    serve mode: version in the `opstack` entry. Default 0.
//   --no-opstack             serve mode: leave the `opstack` entry out (to test filtering).
//   --tcp <port>             serve mode: put this `tcp` port into the ENR (e.g. a gossip-peer.mjs listening port).
//   --key <hex>              32-byte secp256k1 private key (hex). Default: a fresh random key. Reusing the key of a
//                            gossip-peer.mjs gives one identity for both, as op-node does.
//   --port <n>               UDP port to bind on loopback. Default 0 (OS picks).
//   --ip6                    bind ::1 instead of 127.0.0.1 (probe mode picks this by itself for an ip6-only ENR).
//   --timeout-ms <n>         probe: give up after n ms (exit 1). serve: exit 0 after n ms. Default 20000 / 30000.
//   --ignore-stdin           do not exit on stdin EOF (by default EOF on stdin stops the process).
//
// Output (one JSON object per line on stdout; diagnostics on stderr):
//   {"event":"started","nodeId":"<hex>","peerId":"16Uiu2...","ip":"127.0.0.1","udp":N}            (both modes)
//   {"event":"pong","enrSeq":"<decimal>","addr":{"ip":"127.0.0.1","port":N}}   (probe: the PONG we got back)
//   {"event":"enr","nodeId":"<hex>","peerId":"16Uiu2...","seq":N,"ip":"...","ip6":..,"udp":N,"tcp":N,
//    "opstack":{"chainId":N,"version":N} | null,"opstackError":"..." (only if present but undecodable),
//    "enr":"enr:...","source":"findnode"}                                          (probe: the record received)
//   {"event":"serving","enr":"enr:...","nodeId":"<hex>","peerId":"16Uiu2...","ip":"127.0.0.1","udp":N,"tcp":N,
//    "opstack":{"chainId":N,"version":N}}                                                       (serve mode)
//   {"event":"enr_added","nodeId":"<hex>","ip":..,"udp":..,"opstack":..}  (serve: a node entered our table)
//   {"event":"error","error":"..."}
//   {"event":"exit","reason":"done"|"timeout"|"stdin-closed"|"signal"|"error"}
// seq is a JSON number when it fits in 2^53, else a decimal string. Exit code 2 on bad arguments.

import { parseArgs } from 'node:util'
import {
  installPolyfills, emit, parseSecp256k1Hex, installLifetime, isLoopbackIp, encodeOpstack, decodeOpstack
} from './lib/opstack.mjs'

installPolyfills()

const { Discv5 } = await import('@chainsafe/discv5')
const { ENR, SignableENR } = await import('@chainsafe/enr')
const { generateKeyPair, privateKeyFromRaw } = await import('@libp2p/crypto/keys')
const { multiaddr } = await import('@multiformats/multiaddr')

function usageError (msg) {
  process.stderr.write(`discv5-probe: ${msg}\n`)
  process.exit(2)
}

function intArg (name, text, def) {
  if (text === undefined) return def
  if (!/^\d+$/.test(text)) usageError(`--${name} must be a non-negative integer, got ${text}`)
  return Number(text)
}

let args
try {
  args = parseArgs({
    options: {
      enr: { type: 'string' },
      serve: { type: 'boolean', default: false },
      'chain-id': { type: 'string' },
      'opstack-version': { type: 'string' },
      'no-opstack': { type: 'boolean', default: false },
      tcp: { type: 'string' },
      key: { type: 'string' },
      port: { type: 'string' },
      ip6: { type: 'boolean', default: false },
      'timeout-ms': { type: 'string' },
      'ignore-stdin': { type: 'boolean', default: false }
    },
    strict: true,
    allowPositionals: false
  }).values
} catch (e) {
  usageError(e.message)
}

const serve = args.serve
const port = intArg('port', args.port, 0)
const tcpPort = intArg('tcp', args.tcp, undefined)
if (port > 65535 || (tcpPort !== undefined && (tcpPort === 0 || tcpPort > 65535))) usageError('port out of range')
const timeoutMs = intArg('timeout-ms', args['timeout-ms'], serve ? 30000 : 20000)
let chainId
if (serve && !args['no-opstack']) {
  if (args['chain-id'] === undefined) usageError('--serve needs --chain-id (or --no-opstack)')
  if (!/^\d+$/.test(args['chain-id'])) usageError('--chain-id must be a non-negative integer')
  chainId = BigInt(args['chain-id'])
}
const opstackVersion = intArg('opstack-version', args['opstack-version'], 0)
if (!serve && args.enr === undefined) usageError('probe mode needs --enr <enr:...> (or use --serve)')

/** Parses an ENR argument and checks it points at loopback; exits with code 2 otherwise. */
function loopbackEnr (text) {
  let enr
  try { enr = ENR.decodeTxt(text.trim()) } catch (e) { usageError(`bad ENR: ${e.message}`) }
  const v4 = enr.ip !== undefined && enr.udp !== undefined
  const v6 = enr.ip6 !== undefined && enr.udp6 !== undefined
  if (!v4 && !v6) usageError('ENR has no ip+udp / ip6+udp6')
  if ((v4 && !isLoopbackIp(enr.ip)) || (!v4 && !isLoopbackIp(enr.ip6))) {
    usageError(`refusing non-loopback ENR address ${v4 ? enr.ip : enr.ip6}`)
  }
  return { enr, v6only: !v4 }
}

const target = args.enr !== undefined ? loopbackEnr(args.enr) : undefined
const useIp6 = args.ip6 || (target?.v6only ?? false)

const privateKey = args.key !== undefined
  ? (() => { try { return privateKeyFromRaw(parseSecp256k1Hex(args.key)) } catch (e) { usageError(e.message) } })()
  : await generateKeyPair('secp256k1')

const kvs = {}
if (chainId !== undefined) kvs.opstack = encodeOpstack(chainId, opstackVersion)
const localEnr = SignableENR.createFromPrivateKey(privateKey, kvs)
const bindIp = useIp6 ? '::1' : '127.0.0.1'

const discv5 = Discv5.create({
  enr: localEnr,
  privateKey,
  bindAddrs: useIp6
    ? { ip6: multiaddr(`/ip6/::1/udp/${port}`) }
    : { ip4: multiaddr(`/ip4/127.0.0.1/udp/${port}`) },
  config: {
    enrUpdate: false, // keep the loopback address we set; no address voting
    requestTimeout: 2000,
    requestRetries: 2
  }
})

/** discv5's { type, octets } IP as text. */
function ipText (ip) {
  if (ip === undefined || ip === null) return null
  if (ip.type === 4) return Array.from(ip.octets).join('.')
  const words = []
  for (let i = 0; i < 16; i += 2) words.push(((ip.octets[i] << 8) | ip.octets[i + 1]).toString(16))
  return words.join(':')
}

/** A decoded record as one JSON line's fields. */
function describe (enr) {
  const out = {
    nodeId: enr.nodeId,
    peerId: enr.peerId.toString(),
    seq: enr.seq <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(enr.seq) : enr.seq.toString(),
    ip: enr.ip ?? null,
    udp: enr.udp ?? null,
    tcp: enr.tcp ?? null,
    opstack: null
  }
  if (enr.ip6 !== undefined) { out.ip6 = enr.ip6; out.udp6 = enr.udp6 ?? null; out.tcp6 = enr.tcp6 ?? null }
  const raw = enr.kvs.get('opstack')
  if (raw !== undefined) {
    try { out.opstack = decodeOpstack(raw) } catch (e) { out.opstackError = e.message }
  }
  return out
}

const lifetime = installLifetime(timeoutMs, async () => { await discv5.stop() }, { watchStdin: !args['ignore-stdin'] })
// In probe mode a timeout is a failure: report it and exit 1 just before the generic timeout would exit 0.
if (!serve) {
  setTimeout(() => {
    emit({ event: 'error', error: `no record from the target within ${timeoutMs} ms` })
    lifetime.stop('timeout', 1)
  }, Math.max(0, timeoutMs - 50)).unref()
}

try {
  await discv5.start()
} catch (e) {
  emit({ event: 'error', error: `discv5 start: ${e.message}` })
  await lifetime.stop('error', 1)
}
const transport = discv5.sessionService.transport
const boundPort = (useIp6 ? transport.ip6 : transport.ip4).socket.address().port
// Advertise where we really are (SignableENR setters bump seq and re-sign).
if (useIp6) { localEnr.ip6 = bindIp; localEnr.udp6 = boundPort } else { localEnr.ip = bindIp; localEnr.udp = boundPort }
if (tcpPort !== undefined) { if (useIp6) localEnr.tcp6 = tcpPort; else localEnr.tcp = tcpPort }
emit({ event: 'started', nodeId: localEnr.nodeId, peerId: localEnr.peerId.toString(), ip: bindIp, udp: boundPort })

if (serve) {
  discv5.on('enrAdded', (enr) => emit({ event: 'enr_added', ...describe(enr) }))
  if (target !== undefined) discv5.addEnr(target.enr)
  emit({ event: 'serving', enr: localEnr.encodeTxt(), ...describe(localEnr.toENR()) })
} else {
  const remote = target.enr
  // A request lost to a loaded host (UDP, 2 s timeout, 2 retries: "RPC failure") is tried again
  // until the probe's timeout; a wrong answer is not.
  discv5.addEnr(remote)
  for (;;) {
    let pong, enrs
    try {
      pong = await discv5.sendPing(remote)
      enrs = await discv5.sendFindNode(remote, [0])
    } catch (e) {
      process.stderr.write(`discv5-probe: ${String(e?.message ?? e)}; trying again\n`)
      await new Promise((resolve) => setTimeout(resolve, 200))
      continue
    }
    emit({ event: 'pong', enrSeq: pong.enrSeq.toString(), addr: { ip: ipText(pong.addr.ip), port: pong.addr.port } })
    const own = enrs.find((e) => e.nodeId === remote.nodeId)
    if (own === undefined) {
      emit({ event: 'error', error: `FINDNODE(0) returned ${enrs.length} record(s), none with node id ${remote.nodeId}` })
      await lifetime.stop('error', 1)
    } else {
      emit({ event: 'enr', ...describe(own), enr: own.encodeTxt(), source: 'findnode' })
      await lifetime.stop('done', 0)
    }
    break
  }
}
