#!/usr/bin/env node
// gossip-peer.mjs: an independent js-libp2p gossipsub peer configured like op-node, used as an interop probe.
//
// Stack: TCP on 127.0.0.1 only, Noise (secp256k1 identity), yamux, identify, ping, gossipsub (meshsub 1.2/1.1/1.0,
// no floodsub fallback) with StrictNoSign, op-node's message id, D 8/6/12/6, heartbeat 500 ms, fanout TTL 24 s,
// mcache 12/3, seen TTL 65 s, flood publish off, no PX, no publishing to zero peers, 10 MiB RPC limit.
// Every received message is accepted (it is a probe) and reported.
//
// Usage: node gossip-peer.mjs [options]
//   --key <hex>              32-byte secp256k1 private key (hex, optional 0x). Default: a fresh random key.
//   --port <n>               TCP listen port on 127.0.0.1. Default 0 (OS picks; see the "listening" line).
//   --topic <t>              subscribe to topic t. Repeatable.
//   --dial <multiaddr>       dial this peer, e.g. /ip4/127.0.0.1/tcp/9222/p2p/16Uiu2HAm... Repeatable. Only
//                            /ip4/127.0.0.1/... and /ip6/::1/... are accepted; anything else exits with code 2.
//   --publish <topic>=<file> publish the file's bytes verbatim (the caller snappy-compresses) on topic. Repeatable;
//                            published in order, each once.
//   --publish-wait-ms <n>    wait at most n ms for a mesh peer on the topic (a subscriber, if we are not
//                            subscribed) before publishing anyway. Default 10000.
//   --publish-delay-ms <n>   extra wait after the mesh peer appears, before publishing. Default 0.
//   --max-hex <n>            include "dataHex" in message lines when the data is at most n bytes. Default 65536.
//   --exit-after-messages <n> exit(0) once n messages were received. Default 0 (never).
//   --timeout-ms <n>         exit(0) after n ms. Default 30000.
//   --ignore-stdin           do not exit when stdin closes (by default EOF on stdin means "stop": a harness keeps
//                            the child's stdin piped open and closes it, or dies, to stop us).
//
// Output: one JSON object per line on stdout (diagnostics go to stderr):
//   {"event":"listening","peerId":"16Uiu2...","addrs":["/ip4/127.0.0.1/tcp/N/p2p/16Uiu2..."]}
//   {"event":"connected","peer":"16Uiu2...","addr":"/ip4/...","direction":"inbound"|"outbound"}
//   {"event":"disconnected","peer":"16Uiu2..."}
//   {"event":"dial_error","addr":"...","error":"..."}
//   {"event":"subscribed","peer":"16Uiu2...","topic":"..."}      (a remote peer subscribed)
//   {"event":"unsubscribed","peer":"16Uiu2...","topic":"..."}
//   {"event":"graft"|"prune","peer":"16Uiu2...","topic":"...","direction":"inbound"|"outbound"}
//   {"event":"message","topic":"...","from":"<propagation source peer>","msgId":"<40 hex>","snappy":true|false,
//    "dataLen":N,"dataHex":"..." (if dataLen <= --max-hex),"sha256":"<hex of raw data>"}
//   {"event":"published","topic":"...","msgId":"<40 hex>","dataLen":N,"sha256":"...","recipients":N}
//   {"event":"publish_error","topic":"...","msgId":"<40 hex>","error":"..."}
//   {"event":"exit","reason":"timeout"|"stdin-closed"|"signal"|"messages"}
// Exit code: 0 on timeout / stdin close / --exit-after-messages; 2 on bad arguments; 1 on a startup failure.

import { readFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import {
  installPolyfills, opMessageId, toHex, sha256Hex, emit, parseSecp256k1Hex, installLifetime, MAX_GOSSIP_SIZE,
  isLoopbackIp
} from './lib/opstack.mjs'

installPolyfills()

const { createLibp2p } = await import('libp2p')
const { tcp } = await import('@libp2p/tcp')
const { noise } = await import('@chainsafe/libp2p-noise')
const { yamux } = await import('@chainsafe/libp2p-yamux')
const { identify } = await import('@libp2p/identify')
const { ping } = await import('@libp2p/ping')
const { gossipsub } = await import('@chainsafe/libp2p-gossipsub')
const { generateKeyPair, privateKeyFromRaw } = await import('@libp2p/crypto/keys')
const { multiaddr } = await import('@multiformats/multiaddr')

function usageError (msg) {
  process.stderr.write(`gossip-peer: ${msg}\n`)
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
      key: { type: 'string' },
      port: { type: 'string' },
      topic: { type: 'string', multiple: true, default: [] },
      dial: { type: 'string', multiple: true, default: [] },
      publish: { type: 'string', multiple: true, default: [] },
      'publish-wait-ms': { type: 'string' },
      'publish-delay-ms': { type: 'string' },
      'max-hex': { type: 'string' },
      'exit-after-messages': { type: 'string' },
      'timeout-ms': { type: 'string' },
      'ignore-stdin': { type: 'boolean', default: false }
    },
    strict: true,
    allowPositionals: false
  }).values
} catch (e) {
  usageError(e.message)
}

const port = intArg('port', args.port, 0)
if (port > 65535) usageError('--port out of range')
const publishWaitMs = intArg('publish-wait-ms', args['publish-wait-ms'], 10000)
const publishDelayMs = intArg('publish-delay-ms', args['publish-delay-ms'], 0)
const maxHex = intArg('max-hex', args['max-hex'], 65536)
const exitAfterMessages = intArg('exit-after-messages', args['exit-after-messages'], 0)
const timeoutMs = intArg('timeout-ms', args['timeout-ms'], 30000)

/** A multiaddr is acceptable only if it is /ip4/127.0.0.1/tcp/N[/p2p/ID] or /ip6/::1/tcp/N[/p2p/ID]. */
function loopbackTcpAddr (ma) {
  const parts = ma.stringTuples()
  if (parts.length < 2 || parts.length > 3) return false
  const [[p0, ip], [p1]] = parts
  if (!((p0 === 4 || p0 === 41) && p1 === 6)) return false // ip4|ip6, then tcp
  if (parts.length === 3 && parts[2][0] !== 421) return false // p2p
  return isLoopbackIp(ip)
}

const dialAddrs = []
for (const text of args.dial) {
  let ma
  try { ma = multiaddr(text) } catch (e) { usageError(`bad --dial multiaddr ${text}: ${e.message}`) }
  if (!loopbackTcpAddr(ma)) usageError(`refusing to dial non-loopback or non-TCP address ${text}`)
  dialAddrs.push(ma)
}

const publishes = []
for (const spec of args.publish) {
  const eq = spec.indexOf('=')
  if (eq <= 0) usageError(`--publish wants <topic>=<file>, got ${spec}`)
  const topic = spec.slice(0, eq)
  const file = spec.slice(eq + 1)
  let data
  try { data = new Uint8Array(readFileSync(file)) } catch (e) { usageError(`cannot read ${file}: ${e.message}`) }
  if (data.length > MAX_GOSSIP_SIZE) usageError(`${file} is larger than 10 MiB`)
  publishes.push({ topic, data })
}

const privateKey = args.key !== undefined
  ? (() => { try { return privateKeyFromRaw(parseSecp256k1Hex(args.key)) } catch (e) { usageError(e.message) } })()
  : await generateKeyPair('secp256k1')

/** gossipsub msgIdFn: op-node's id over the raw (still compressed) message data. */
function msgIdFn (msg) {
  return opMessageId(msg.topic, msg.data).id
}

const gossipOptions = {
  globalSignaturePolicy: 'StrictNoSign',
  msgIdFn,
  msgIdToStrFn: (id) => toHex(id),
  fallbackToFloodsub: false,
  floodPublish: false,
  doPX: false,
  allowPublishToZeroTopicPeers: false,
  emitSelf: false,
  D: 8,
  Dlo: 6,
  Dhi: 12,
  Dlazy: 6,
  heartbeatInterval: 500,
  fanoutTTL: 24_000,
  mcacheLength: 12,
  mcacheGossip: 3,
  seenTTL: 65_000,
  maxInboundDataLength: MAX_GOSSIP_SIZE,
  maxOutboundBufferSize: 4 * MAX_GOSSIP_SIZE,
  // op-node's thresholds (spec §6); per-topic params stay empty as in op-node's light profile.
  scoreThresholds: {
    gossipThreshold: -10,
    publishThreshold: -40,
    graylistThreshold: -40,
    acceptPXThreshold: 20,
    opportunisticGraftThreshold: 0.05
  }
}

const maAllowed = (ma) => loopbackTcpAddr(ma.decapsulateCode(421))

let node
try {
  node = await createLibp2p({
    privateKey,
    addresses: { listen: [`/ip4/127.0.0.1/tcp/${port}`] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    connectionGater: {
      // never dial anything but loopback, whatever identify or the peer store learn
      denyDialMultiaddr: async (ma) => !maAllowed(ma)
    },
    services: {
      identify: identify(),
      ping: ping(),
      pubsub: gossipsub(gossipOptions)
    }
  })
} catch (e) {
  process.stderr.write(`gossip-peer: startup failed: ${e.stack ?? e}\n`)
  process.exit(1)
}

const pubsub = node.services.pubsub
const lifetime = installLifetime(timeoutMs, async () => { await node.stop() }, { watchStdin: !args['ignore-stdin'] })

node.addEventListener('connection:open', (evt) => {
  const c = evt.detail
  emit({ event: 'connected', peer: c.remotePeer.toString(), addr: c.remoteAddr.toString(), direction: c.direction })
})
node.addEventListener('peer:disconnect', (evt) => {
  emit({ event: 'disconnected', peer: evt.detail.toString() })
})
pubsub.addEventListener('subscription-change', (evt) => {
  const peer = evt.detail.peerId.toString()
  for (const s of evt.detail.subscriptions) {
    emit({ event: s.subscribe ? 'subscribed' : 'unsubscribed', peer, topic: s.topic })
  }
})
for (const kind of ['graft', 'prune']) {
  pubsub.addEventListener(`gossipsub:${kind}`, (evt) => {
    const d = evt.detail
    emit({ event: kind, peer: d.peerId.toString(), topic: d.topic, direction: d.direction })
  })
}

let received = 0
pubsub.addEventListener('gossipsub:message', (evt) => {
  const { propagationSource, msgId, msg } = evt.detail
  const { snappyValid } = opMessageId(msg.topic, msg.data)
  const line = {
    event: 'message',
    topic: msg.topic,
    from: propagationSource.toString(),
    msgId,
    snappy: snappyValid,
    dataLen: msg.data.length,
    sha256: sha256Hex(msg.data)
  }
  if (msg.data.length <= maxHex) line.dataHex = toHex(msg.data)
  if (msg.type !== 'unsigned') line.signed = true // cannot happen under StrictNoSign; kept as a tripwire
  emit(line)
  received++
  if (exitAfterMessages > 0 && received >= exitAfterMessages) lifetime.stop('messages')
})

for (const t of args.topic) pubsub.subscribe(t)
await node.start()
emit({ event: 'listening', peerId: node.peerId.toString(), addrs: node.getMultiaddrs().map((a) => a.toString()) })

for (const ma of dialAddrs) {
  node.dial(ma).catch((e) => emit({ event: 'dial_error', addr: ma.toString(), error: String(e?.message ?? e) }))
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

async function waitForPeers (topic) {
  const deadline = Date.now() + publishWaitMs
  while (Date.now() < deadline) {
    const n = pubsub.getTopics().includes(topic)
      ? pubsub.getMeshPeers(topic).length
      : pubsub.getSubscribers(topic).length
    if (n > 0) return true
    await sleep(50)
  }
  return false
}

for (const { topic, data } of publishes) {
  await waitForPeers(topic)
  if (publishDelayMs > 0) await sleep(publishDelayMs)
  const msgId = toHex(opMessageId(topic, data).id)
  try {
    const res = await pubsub.publish(topic, data)
    emit({ event: 'published', topic, msgId, dataLen: data.length, sha256: sha256Hex(data), recipients: res.recipients.length })
  } catch (e) {
    emit({ event: 'publish_error', topic, msgId, error: String(e?.message ?? e) })
  }
}
