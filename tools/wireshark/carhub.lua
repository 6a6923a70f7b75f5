--[[
CarHub dissector for Wireshark and tshark (4.0 or later), protocol versions 1 and 2.

What it decodes (protocol/PROTOCOL.md):
  * the framing of section 2: a 4-byte big-endian length, then the payload
    (carhub.len is that length);
  * every plaintext message, by name and field: Hello, Error, Ping, Pong, Bye, the pairing
    messages (PairRequest ... PairResult) and NoiseHandshake. A payload is a msgpack array
    [tag, field1, ...] (msgspec array_like structs); a small msgpack reader below decodes it
    (carhub.msg is the message name, carhub.tag its tag);
  * session frames after the Noise handshake (section 6.2): the 8-byte counter
    (carhub.counter), the ciphertext and its length. carhub.msg is "encrypted".

Carriers:
  * BLE: ATT Write Command / Write Request on channel_in (8d3e0003-...) is phone -> car,
    notifications / indications on channel_out (8d3e0004-...) are car -> phone. Frames may
    span several ATT values: each connection and direction is reassembled, and a frame is
    shown in the packet that completes it. The dissector registers in Wireshark's
    "bluetooth.uuid" table, which btatt consults once it has seen the GATT discovery in the
    capture; for a capture that starts after discovery, use Decode As on btatt.handle.
    The info characteristic (8d3e0002-...) is shown as JSON.
  * LAN: binary WebSocket messages (a heuristic on the "ws" list): each message carries whole
    frames; masked messages (client to server) are phone -> car.

What it cannot decode: the contents of session frames. They are ChaCha20-Poly1305
ciphertexts under keys from the Noise handshake, so the application messages inside
(ContactsBatch, Manifest, NowPlaying, ...) and the codec byte and zstd stream of section 3
stay opaque here; only counter and length are shown. `carhub-capture decode --keylog FILE`
decrypts them given a key log.

Load it with `tshark -X lua_script:tools/wireshark/carhub.lua ...`, or copy it to
~/.local/lib/wireshark/plugins/ (the personal Lua plugins folder, Help > About > Folders).
]]

local carhub = Proto("carhub", "CarHub")

local MAX_FRAME = 1048576  -- PROTOCOL.md section 2: a larger length closes the connection
local COUNTER_SIZE, TAG_SIZE = 8, 16
local MAX_DEPTH = 32       -- msgpack nesting a dissector follows before it gives up

-- Message schemas: tag -> name and fields in wire order (PROTOCOL.md sections 3, 5, 6, 7, 8).
-- Kinds: str, int, bin, bool, versions (an array of ints), any (shown as text). A third
-- element `true` marks a trailing field with a default, which a sender may leave out.
local MESSAGES = {
  [1] = {"Hello", {{"versions", "versions"}, {"role", "str"}, {"device_id", "str"},
                   {"name", "str"}, {"model", "str", true}, {"intent", "str", true},
                   {"selected", "int", true}}},
  [2] = {"Error", {{"reason", "str"}, {"detail", "str", true}}},
  [3] = {"Ping", {{"nonce", "int"}}},
  [4] = {"Pong", {{"nonce", "int"}}},
  [5] = {"Bye", {{"reason", "str", true}}},
  [6] = {"Unpair", {}},
  [10] = {"PairRequest", {{"public_key", "bin"}, {"name", "str"}, {"method", "str"}}},
  [11] = {"PairCommit", {{"public_key", "bin"}, {"commitment", "bin"}}},
  [12] = {"PairNonce", {{"nonce", "bin"}}},
  [13] = {"PairReveal", {{"nonce", "bin"}}},
  [14] = {"PairConfirm", {{"mac", "bin"}}},
  [15] = {"PairResult", {{"accepted", "bool"}, {"reason", "str", true}}},
  [20] = {"NoiseHandshake", {{"payload", "bin"}}},
  -- Only ever inside the session, so normally never seen in clear; named for completeness.
  [30] = {"ContactsState", {{"anchor", "bin"}, {"count", "int"}}},
  [31] = {"ManifestRequest", {}},
  [32] = {"Manifest", {{"entries", "any"}, {"photos", "any"}, {"done", "bool"}}},
  [33] = {"ContactsBatch", {{"seq", "int"}, {"base_anchor", "bin"}, {"upserts", "any"},
                            {"deletes", "any"}, {"photos", "any"}, {"final", "bool"}}},
  [34] = {"ContactsAck", {{"seq", "int"}, {"anchor", "bin"}}},
  [35] = {"ContactsDone", {{"anchor", "bin"}, {"total", "int"}}},
  [40] = {"NowPlaying", {{"title", "str"}, {"artists", "any"}, {"album", "str"},
                         {"duration_ms", "int"}, {"position_ms", "int"}, {"rate", "any"},
                         {"state", "str"}, {"artwork", "bin"}, {"track_id", "str"}}},
  [41] = {"Artwork", {{"hash", "bin"}, {"mime", "str"}, {"data", "bin"}}},
  [42] = {"ArtworkRequest", {{"hash", "bin"}}},
  [43] = {"MediaCommand", {{"action", "str"}, {"position_ms", "int", true}}},
}

-- Fields ---------------------------------------------------------------------------------
local f = {
  frame = ProtoField.bytes("carhub.frame", "Frame"),
  len = ProtoField.uint32("carhub.len", "Length"),
  msg = ProtoField.string("carhub.msg", "Message"),
  tag = ProtoField.uint8("carhub.tag", "Tag"),
  direction = ProtoField.string("carhub.direction", "Direction"),
  counter = ProtoField.uint64("carhub.counter", "Counter"),
  ciphertext = ProtoField.bytes("carhub.ciphertext", "Ciphertext (ChaCha20-Poly1305)"),
  plaintext_len = ProtoField.uint32("carhub.plaintext_len", "Plaintext length"),
  value = ProtoField.string("carhub.value", "Value"),
  segment = ProtoField.string("carhub.segment", "Segment"),
}
local KIND_FIELD = {str = ProtoField.string, int = ProtoField.string, bin = ProtoField.bytes,
                    bool = ProtoField.bool, versions = ProtoField.string, any = ProtoField.string}
-- One field per message field: carhub.hello.device_id, carhub.pairrequest.public_key, ...
local msg_fields = {}
for tag, spec in pairs(MESSAGES) do
  msg_fields[tag] = {}
  for i, fd in ipairs(spec[2]) do
    local abbr = "carhub." .. spec[1]:lower() .. "." .. fd[1]
    local pf = KIND_FIELD[fd[2]](abbr, fd[1])
    msg_fields[tag][i] = pf
    f[abbr] = pf
  end
end
local plist = {}
for _, pf in pairs(f) do plist[#plist + 1] = pf end
carhub.fields = plist

local e_malformed = ProtoExpert.new("carhub.malformed", "Malformed CarHub frame",
                                    expert.group.MALFORMED, expert.severity.ERROR)
carhub.experts = {e_malformed}

local f_opcode = Field.new("btatt.opcode")
local f_connect_in = Field.new("bthci_acl.connect_in")
local f_chandle = Field.new("bthci_acl.chandle")
local f_ws_mask = Field.new("websocket.mask")

-- A minimal msgpack reader over a Tvb ----------------------------------------------------
-- read(tvb, off, depth) -> node, next_off. A node is {t = type, v = value, off, len} with
-- v a Lua string (str), number/UInt64/Int64 (int), boolean, or a list of nodes (arr, map).
-- Errors are raised as strings and caught by the caller (a bad message, never a crash).
local function need(tvb, off, n)
  if off + n > tvb:len() then error("truncated msgpack", 0) end
end

local function u(tvb, off, n)
  need(tvb, off, n)
  if n == 8 then return tvb(off, 8):uint64() end
  return tvb(off, n):uint()
end

local function count(c, tvb, off)
  -- Each element takes at least one byte: a count past the end is malformed at once.
  if c > tvb:len() - off then error("msgpack count past the end", 0) end
  return c
end

local read

local function read_items(tvb, off, n, depth)
  local items = {}
  for i = 1, n do
    items[i], off = read(tvb, off, depth + 1)
  end
  return items, off
end

read = function(tvb, off, depth)
  if depth > MAX_DEPTH then error("msgpack nested too deep", 0) end
  need(tvb, off, 1)
  local b = tvb(off, 1):uint()
  local node = {off = off}
  local p = off + 1  -- first byte after the type byte
  local dlen, n
  if b <= 0x7f then node.t, node.v = "int", b
  elseif b >= 0xe0 then node.t, node.v = "int", b - 256
  elseif b >= 0xa0 and b <= 0xbf then node.t, dlen = "str", b - 0xa0
  elseif b >= 0x90 and b <= 0x9f then node.t, n = "arr", b - 0x90
  elseif b >= 0x80 and b <= 0x8f then node.t, n = "map", (b - 0x80) * 2
  elseif b == 0xc0 then node.t = "nil"
  elseif b == 0xc2 or b == 0xc3 then node.t, node.v = "bool", b == 0xc3
  elseif b == 0xcc or b == 0xcd or b == 0xce or b == 0xcf then
    local w = ({[0xcc] = 1, [0xcd] = 2, [0xce] = 4, [0xcf] = 8})[b]
    node.t, node.v, p = "int", u(tvb, p, w), p + w
  elseif b >= 0xd0 and b <= 0xd3 then
    local w = ({[0xd0] = 1, [0xd1] = 2, [0xd2] = 4, [0xd3] = 8})[b]
    need(tvb, p, w)
    node.t = "int"
    node.v = (w == 8) and tvb(p, 8):int64() or tvb(p, w):int()
    p = p + w
  elseif b == 0xca or b == 0xcb then
    local w = (b == 0xca) and 4 or 8
    need(tvb, p, w)
    node.t, node.v, p = "float", tvb(p, w):float(), p + w
  elseif b == 0xd9 or b == 0xda or b == 0xdb then
    local w = ({[0xd9] = 1, [0xda] = 2, [0xdb] = 4})[b]
    node.t, dlen, p = "str", u(tvb, p, w), p + w
  elseif b == 0xc4 or b == 0xc5 or b == 0xc6 then
    local w = ({[0xc4] = 1, [0xc5] = 2, [0xc6] = 4})[b]
    node.t, dlen, p = "bin", u(tvb, p, w), p + w
  elseif b == 0xdc or b == 0xdd then
    local w = (b == 0xdc) and 2 or 4
    node.t, n, p = "arr", u(tvb, p, w), p + w
  elseif b == 0xde or b == 0xdf then
    local w = (b == 0xde) and 2 or 4
    node.t, n, p = "map", u(tvb, p, w) * 2, p + w
  elseif b >= 0xd4 and b <= 0xd8 then  -- fixext: type byte, then 1..16 bytes
    node.t, dlen, p = "ext", ({1, 2, 4, 8, 16})[b - 0xd3] + 1, p
  elseif b == 0xc7 or b == 0xc8 or b == 0xc9 then
    local w = ({[0xc7] = 1, [0xc8] = 2, [0xc9] = 4})[b]
    node.t, dlen, p = "ext", u(tvb, p, w) + 1, p + w
  else
    error(string.format("unknown msgpack byte 0x%02x", b), 0)
  end
  if dlen then
    need(tvb, p, dlen)
    node.doff, node.dlen = p, dlen
    if node.t == "str" then
      node.v = dlen > 0 and tvb(p, dlen):string(ENC_UTF_8) or ""
    end
    p = p + dlen
  elseif n then
    node.v, p = read_items(tvb, p, count(n, tvb, p), depth)
  end
  node.len = p - off
  return node, p
end

-- A node as short text, for the Info column and generic values.
local function show(tvb, node, depth)
  depth = depth or 0
  local t = node.t
  if t == "str" then return string.format("%q", node.v) end
  if t == "int" or t == "bool" or t == "float" then return tostring(node.v) end
  if t == "nil" then return "nil" end
  if t == "bin" or t == "ext" then
    if node.dlen == 0 then return "b''" end
    if node.dlen <= 8 then return tvb(node.doff, node.dlen):bytes():tohex(true) end
    return string.format("<%d bytes>", node.dlen)
  end
  if depth > 2 then return "[...]" end
  local parts = {}
  for i, item in ipairs(node.v) do
    if i > 8 then parts[#parts + 1] = string.format("... %d items", #node.v); break end
    parts[#parts + 1] = show(tvb, item, depth + 1)
  end
  local open, close = "[", "]"
  if t == "map" then open, close = "{", "}" end
  return open .. table.concat(parts, ", ") .. close
end

-- Messages -------------------------------------------------------------------------------
local function add_field(tree, tvb, pf, kind, node)
  local range = tvb(node.off, node.len)
  if kind == "str" and node.t == "str" then
    tree:add(pf, range, node.v)
  elseif kind == "bin" and node.t == "bin" then
    if node.dlen > 0 then tree:add(pf, tvb(node.doff, node.dlen))
    else tree:add(pf, range, ByteArray.new()) end
  elseif kind == "bool" and node.t == "bool" then
    tree:add(pf, range, node.v)
  elseif kind == "versions" and node.t == "arr" then
    local vs = {}
    for i, item in ipairs(node.v) do vs[i] = tostring(item.v) end
    tree:add(pf, range, table.concat(vs, ","))
  elseif kind == "int" or kind == "any" then
    tree:add(pf, range, node.t == "int" and tostring(node.v) or show(tvb, node))
  else
    -- A wrong type is malformed on the wire (section 3); show it rather than hide it.
    tree:add(f.value, range, show(tvb, node)):add_proto_expert_info(e_malformed,
      "wrong type: " .. node.t .. " for a " .. kind)
  end
end

-- A short summary of the interesting fields, for the Info column.
local function summary(tag, items, tvb)
  local function s(i) return items[i + 1] and items[i + 1].v end
  if tag == 1 then
    local vs = {}
    if items[2] and items[2].t == "arr" then
      for i, item in ipairs(items[2].v) do vs[i] = tostring(item.v) end
    end
    return string.format("%s %s v[%s] sel=%s", tostring(s(2)), tostring(s(6) or "session"),
                         table.concat(vs, ","), tostring(s(7) or 0))
  elseif tag == 2 or tag == 5 then return tostring(s(1) or "")
  elseif tag == 3 or tag == 4 then return tostring(s(1))
  elseif tag == 10 then return string.format("%s %q", tostring(s(3)), tostring(s(2)))
  elseif tag == 15 then return string.format("accepted=%s %s", tostring(s(1)), s(2) or "")
  end
  return nil
end

-- Dissect one plaintext message; returns its name (for the Info column).
local function dissect_message(tvb, tree)
  local ok, node = pcall(read, tvb, 0, 0)
  if not ok or node.t ~= "arr" or #node.v == 0 or node.v[1].t ~= "int" then
    tree:add(f.msg, tvb(), "malformed"):add_proto_expert_info(e_malformed,
      ok and "not a msgpack array starting with a tag" or tostring(node))
    return "malformed"
  end
  local items = node.v
  local tag = tonumber(tostring(items[1].v)) or -1
  local spec = MESSAGES[tag]
  local name = spec and spec[1] or string.format("Unknown(%d)", tag)
  tree:add(f.msg, tvb(node.off, node.len), name)
  tree:add(f.tag, tvb(items[1].off, items[1].len), tag)
  if node.len < tvb:len() then
    tree:add_proto_expert_info(e_malformed, "bytes after the message")
  end
  for i = 2, #items do
    local fd = spec and spec[2][i - 1]
    if fd then
      add_field(tree, tvb, msg_fields[tag][i - 1], fd[2], items[i])
    else
      tree:add(f.value, tvb(items[i].off, items[i].len), show(tvb, items[i]))
        :add_proto_expert_info(e_malformed, "extra element")
    end
  end
  for i = #items, spec and #spec[2] or 0 do
    local fd = spec[2][i]
    if not fd[3] then
      tree:add_proto_expert_info(e_malformed, "missing field " .. fd[1])
      break
    end
  end
  local extra = spec and summary(tag, items, tvb)
  return extra and (name .. " (" .. extra .. ")") or name
end

-- A session frame: counter || AEAD ciphertext (section 6.2).
local function dissect_session(tvb, tree)
  local n = tvb:len()
  tree:add(f.msg, tvb(), "encrypted")
  if n < COUNTER_SIZE + TAG_SIZE then
    tree:add_proto_expert_info(e_malformed, "session frame shorter than 24 bytes (tampered)")
    return "encrypted (short)"
  end
  local counter = tvb(0, COUNTER_SIZE):uint64()
  tree:add(f.counter, tvb(0, COUNTER_SIZE))
  tree:add(f.ciphertext, tvb(COUNTER_SIZE))
  tree:add(f.plaintext_len, tvb(COUNTER_SIZE), n - COUNTER_SIZE - TAG_SIZE)
  return string.format("encrypted #%s", tostring(counter))
end

-- A payload is a plaintext message when it starts like a msgpack array; a session frame
-- starts with its 8-byte counter, whose first byte is 0 for any counter below 2^56.
local function is_plaintext(first)
  return (first >= 0x90 and first <= 0x9f) or first == 0xdc or first == 0xdd
end

-- Dissect one whole frame (length prefix included); returns text for the Info column.
local function dissect_frame(tvb, pinfo, tree, direction)
  local L = tvb(0, 4):uint()
  local sub = tree:add(carhub, tvb(), "CarHub frame")
  if direction then sub:add(f.direction, direction):set_generated() end
  sub:add(f.len, tvb(0, 4))
  local text
  if L == 0 then
    sub:add(f.msg, tvb(0, 4), "malformed"):add_proto_expert_info(e_malformed, "empty frame")
    text = "malformed"
  else
    local payload = tvb(4, L):tvb()
    if is_plaintext(payload(0, 1):uint()) then
      text = dissect_message(payload, sub)
    else
      text = dissect_session(payload, sub)
    end
  end
  sub:append_text(": " .. text .. string.format(", %d bytes", L))
  return text
end

local function set_columns(pinfo, texts, direction)
  if #texts == 0 then return end
  pinfo.cols.protocol = "CarHub"
  local arrow = direction and (direction .. " ") or ""
  pinfo.cols.info = arrow .. table.concat(texts, "; ")
end

-- BLE: reassembly of each connection's two byte streams ----------------------------------
-- First pass: streams[key] holds the bytes of an unfinished frame; done[frame number]
-- keeps what each packet completed, so a later (random-order) pass shows the same.
local streams, done = {}, {}

function carhub.init()
  streams, done = {}, {}
end

local PHONE_TO_CAR, CAR_TO_PHONE = "phone->car", "car->phone"
local ATT_DIRECTION = {[0x52] = PHONE_TO_CAR, [0x12] = PHONE_TO_CAR, [0xd2] = PHONE_TO_CAR,
                       [0x1b] = CAR_TO_PHONE, [0x1d] = CAR_TO_PHONE}

local function ba_u32(ba)
  return ((ba:get_index(0) * 256 + ba:get_index(1)) * 256 + ba:get_index(2)) * 256
    + ba:get_index(3)
end

local function tail(ba, from)
  if from >= ba:len() then return ByteArray.new() end
  return ba:subset(from, ba:len() - from)
end

-- Append one chunk to the stream `key`; return {frames = {ByteArray...}, pending, need, bad}.
local function reassemble(key, chunk)
  local st = streams[key] or {buf = ByteArray.new()}
  streams[key] = st
  st.buf = st.buf .. chunk
  local res = {frames = {}}
  while st.buf:len() >= 4 do
    local L = ba_u32(st.buf)
    if L > MAX_FRAME then
      -- A receiver closes here (section 2); the rest of this stream cannot be framed.
      res.bad = L
      st.buf = ByteArray.new()
      break
    end
    if st.buf:len() < 4 + L then break end
    res.frames[#res.frames + 1] = st.buf:subset(0, 4 + L)
    st.buf = tail(st.buf, 4 + L)
  end
  if st.buf:len() > 0 then
    res.pending = st.buf:len()
    res.need = st.buf:len() >= 4 and 4 + ba_u32(st.buf) or nil
  end
  return res
end

-- A stream is one direction of one connection as one HCI saw it: the radio's capture holds
-- both controllers, so each write appears twice (sent by one host, received by the other)
-- under the same connection handle; the HCI direction (sent/received) keeps them apart.
local function ble_key(pinfo, direction)
  local ci, ch = f_connect_in(), f_chandle()
  return string.format("ble:%s:%s:%s:%s", ci and tostring(ci.value) or "?",
                       ch and tostring(ch.value) or "?", tostring(pinfo.p2p_dir), direction)
end

local function dissect_ble(tvb, pinfo, tree)
  local op = f_opcode()
  local direction = op and ATT_DIRECTION[op.value]
  if not direction or tvb:len() == 0 then return 0 end
  local res = done[pinfo.number]
  if not res then
    res = reassemble(ble_key(pinfo, direction), tvb:bytes())
    done[pinfo.number] = res
  end
  local texts = {}
  for i, ba in ipairs(res.frames) do
    local ftvb = ba:tvb(#res.frames > 1 and ("CarHub frame " .. i) or "CarHub frame")
    texts[#texts + 1] = dissect_frame(ftvb, pinfo, tree, direction)
  end
  if res.pending then
    local what = res.need and string.format("%d of %d bytes of a frame", res.pending, res.need)
      or string.format("%d bytes of a frame header", res.pending)
    tree:add(carhub, tvb(), "CarHub segment"):add(f.segment, tvb(), what)
    if #texts == 0 then texts[1] = "[segment: " .. what .. "]" end
  end
  if res.bad then
    tree:add(carhub, tvb(), "CarHub"):add_proto_expert_info(e_malformed,
      string.format("frame length %d exceeds 1 MiB", res.bad))
    texts[#texts + 1] = "frame-too-large"
  end
  set_columns(pinfo, texts, direction)
  return tvb:len()
end

carhub.dissector = dissect_ble

-- LAN: a WebSocket binary message of whole frames ----------------------------------------
local KNOWN_TAG = {}
for tag in pairs(MESSAGES) do KNOWN_TAG[tag] = true end

-- True when `tvb` is exactly a sequence of plausible CarHub frames.
local function looks_like_frames(tvb)
  local off, n = 0, tvb:len()
  if n < 5 then return false end
  while off < n do
    if off + 4 > n then return false end
    local L = tvb(off, 4):uint()
    if L == 0 or L > MAX_FRAME or off + 4 + L > n then return false end
    local first = tvb(off + 4, 1):uint()
    if is_plaintext(first) then
      local hdr = (first == 0xdc) and 3 or ((first == 0xdd) and 5 or 1)
      if L <= hdr or not KNOWN_TAG[tvb(off + 4 + hdr, 1):uint()] then return false end
    elseif first ~= 0 or L < COUNTER_SIZE + TAG_SIZE then
      return false
    end
    off = off + 4 + L
  end
  return true
end

local function dissect_ws(tvb, pinfo, tree)
  if not looks_like_frames(tvb) then return false end
  -- The phone is the WebSocket client, and a client masks every frame it sends.
  local masks = {f_ws_mask()}
  local direction = nil
  if #masks > 0 then
    direction = masks[#masks].value and PHONE_TO_CAR or CAR_TO_PHONE
  end
  local texts, off = {}, 0
  while off < tvb:len() do
    local L = tvb(off, 4):uint()
    texts[#texts + 1] = dissect_frame(tvb(off, 4 + L):tvb(), pinfo, tree, direction)
    off = off + 4 + L
  end
  set_columns(pinfo, texts, direction)
  return true
end

carhub:register_heuristic("ws", dissect_ws)

-- Registration ---------------------------------------------------------------------------
local uuids = DissectorTable.get("bluetooth.uuid")
uuids:add("8d3e0003-6a2c-4b5f-9c71-3f0e2a5bca11", carhub)  -- channel_in
uuids:add("8d3e0004-6a2c-4b5f-9c71-3f0e2a5bca11", carhub)  -- channel_out
local json = Dissector.get("json")
if json then uuids:add("8d3e0002-6a2c-4b5f-9c71-3f0e2a5bca11", json) end  -- info
-- For captures without the GATT discovery: Decode As... btatt.handle -> CARHUB.
DissectorTable.get("btatt.handle"):add_for_decode_as(carhub)
