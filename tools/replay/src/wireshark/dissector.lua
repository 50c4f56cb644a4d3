-- ---------------------------------------------------------------------------
-- The dissector. Everything above this line is generated data (`G`); what
-- follows reads it. Lua 5.2 (Wireshark 3.x/4.x) and later: no 5.3 operators.
--
-- Framing (docs/protocol.md §1): a 6-byte header, then the body. `plain`:
-- size u16, command u16, byte 4 zero, byte 5 CRC-8 over bytes 0..4 and the
-- body. `rose`: bytes 0..4 hold the 40-bit logical header scrambled
-- (direction-dependent bit order, masked by the key tables at column atv),
-- byte 5 the CRC-8 over the logical header and the plaintext; the body is
-- XORed with mask((eav + i) % 16, (atv + i) % 2048) at packet offset i.
-- ---------------------------------------------------------------------------

local rose = Proto("rose", "ROSE Online")

local CODECS = { { "rose", "rose (osIROSE cipher)", 1 }, { "plain", "plain (clear header)", 2 },
                 { "auto", "auto (plain if it checks, else rose)", 3 } }
local CODEC_ROSE, CODEC_PLAIN, CODEC_AUTO = 1, 2, 3
local DIALECT_PREFS = {}
for i, d in ipairs(G.dialects) do
  DIALECT_PREFS[i] = { d.name, d.name, i }
end

rose.prefs.port = Pref.uint("Service port", G.default_port,
  "TCP port of the gateway; the side on this port is the server")
rose.prefs.codec = Pref.enum("Codec", CODEC_ROSE, "The gateway's --codec", CODECS, false)
rose.prefs.dialect = Pref.enum("Packet ids", 1, "The gateway's --packet-ids", DIALECT_PREFS, false)

-- Bit operations without the 5.2-only bit32 or the 5.3 operators.
local bxor = (bit32 and bit32.bxor) or (bit and bit.bxor) or function(a, b)
  local r, p = 0, 1
  while a > 0 or b > 0 do
    if a % 2 ~= b % 2 then r = r + p end
    a, b, p = math.floor(a / 2), math.floor(b / 2), p * 2
  end
  return r
end

local function bit_at(bytes, p)
  return math.floor(bytes[math.floor(p / 8)] / 2 ^ (p % 8)) % 2
end

-- Key-table masks, decoded once at load: MASK[t * 2048 + column].
local MASK = {}
for t = 0, 15 do
  local hex = G.masks[t + 1]
  for col = 0, 2047 do
    MASK[t * 2048 + col] = tonumber(hex:sub(2 * col + 1, 2 * col + 2), 16)
  end
end
local function mask(t, col)
  return MASK[(t % 16) * 2048 + (col % 2048)]
end

-- The logical fields by name, and the field each logical bit belongs to.
local LOGICAL, OWNER = {}, {}
for _, fl in ipairs(G.logical) do
  LOGICAL[fl.name] = fl
  for l = fl.first, fl.first + fl.width - 1 do OWNER[l] = fl end
end
local ATV_FIRST, ATV_LAST = LOGICAL.atv.first, LOGICAL.atv.first + LOGICAL.atv.width - 1

local function crc8(crc, bytes, from, to)
  for i = from, to do
    crc = G.crc8[bxor(crc, bytes[i])]
  end
  return crc
end

-- Fields --------------------------------------------------------------------

local f = {
  name = ProtoField.string("rose.name", "Packet"),
  command = ProtoField.uint16("rose.command", "Command", base.HEX),
  direction = ProtoField.string("rose.direction", "Direction"),
  size = ProtoField.uint16("rose.size", "Size on the wire", base.DEC),
  data_len = ProtoField.uint16("rose.data_len", "Plaintext length", base.DEC),
  atv = ProtoField.uint16("rose.atv", "Table column (atv)", base.HEX),
  eav = ProtoField.uint8("rose.eav", "Table row offset (eav)", base.DEC),
  ev = ProtoField.uint8("rose.ev", "Padding (ev)", base.DEC),
  checksum = ProtoField.uint8("rose.checksum", "Checksum", base.HEX),
  checksum_good = ProtoField.bool("rose.checksum.good", "Checksum good"),
  body = ProtoField.bytes("rose.body", "Body (plaintext)"),
}

local ef = {
  bad_checksum = ProtoExpert.new("rose.checksum.bad", "Checksum mismatch",
    expert.group.CHECKSUM, expert.severity.ERROR),
  bad_header = ProtoExpert.new("rose.header.bad", "Header cannot be framed; the rest of the stream is not decoded",
    expert.group.MALFORMED, expert.severity.ERROR),
  short_body = ProtoExpert.new("rose.body.short", "Body shorter than its layout",
    expert.group.MALFORMED, expert.severity.WARN),
  unknown = ProtoExpert.new("rose.unknown", "Id unknown in this dialect",
    expert.group.UNDECODED, expert.severity.NOTE),
}

-- Typed packets: field lists by packet name (src/protocol/packets/).
-- Kinds: u8 u16 u32 i16 f32 cstr (0-terminated), digest (32 or 64 hex
-- digits, docs/protocol.md §9 D4), rest (bytes to the end), items (8 × u32), list_end
-- (elements until the body ends), list_u8 (u8 count, then elements).
local CHAR_INFO = {
  { "name", "cstr" }, { "race", "u8" }, { "level", "u16" }, { "job", "u16" },
  { "remain_secs_until_delete", "u32" }, { "platinium", "u8" }, { "face", "u32" },
  { "hair", "u32" }, { "items", "items" },
}
local MOUSE_BROADCAST = {
  { "id", "u16" }, { "target_id", "u16" }, { "distance", "u16" }, { "x", "f32" },
  { "y", "f32" }, { "z", "u16" },
}
local MOVE = {}
for i, v in ipairs(MOUSE_BROADCAST) do MOVE[i] = v end
MOVE[#MOVE + 1] = { "move_mode", "u8" }
local POSITION_BROADCAST = { { "char_id", "u16" }, { "x", "f32" }, { "y", "f32" }, { "z", "i16" } }

local LAYOUTS = {
  PAKSS_ACCEPT_REPLY = { { "result", "u8" }, { "rand_value", "u32" } },
  PAKWC_LOGOUT_REPLY = { { "wait_time", "u16" } },
  PAKCS_SCREEN_SHOT_TIME_REQ = { { "count", "u16" } },
  PAKSC_SCREEN_SHOT_TIME_REPLY = { { "year", "u16" }, { "month", "u8" }, { "day", "u8" },
    { "hour", "u8" }, { "minute", "u8" } },
  PAKCS_LOGIN_REQ = { { "digest", "digest" }, { "username", "cstr" } },
  PAKLC_LOGIN_REPLY = { { "result", "u8" }, { "right", "u16" }, { "pay_type", "u16" },
    { "servers", "list_end", { { "test", "u8" }, { "name", "cstr" }, { "id", "u32" } } } },
  PAKCS_CHANNEL_LIST_REQ = { { "server_id", "u32" } },
  PAKLC_CHANNEL_LIST_REPLY = { { "server_id", "u32" },
    { "channels", "list_u8", { { "id", "u8" }, { "low_age", "u8" }, { "high_age", "u8" },
      { "capacity", "u16" }, { "name", "cstr" } } } },
  PAKCS_SRV_SELECT_REQ = { { "server_id", "u32" }, { "channel_id", "u8" } },
  PAKLC_SRV_SELECT_REPLY = { { "result", "u8" }, { "session_id", "u32" }, { "crypt_val", "u32" },
    { "ip", "cstr" }, { "port", "u16" } },
  PAKCS_JOIN_SERVER_REQ = { { "session_id", "u32" }, { "digest", "rest" } },
  PAKSC_JOIN_SERVER_REPLY = { { "result", "u8" }, { "id", "u32" }, { "pay_flag", "u32" } },
  PAKCC_CHAR_LIST_REPLY = { { "characters", "list_u8", CHAR_INFO } },
  PAKCS_CREATE_CHAR_REQ = { { "race", "u8" }, { "stone", "u8" }, { "hair", "u8" }, { "face", "u8" },
    { "weapon", "u8" }, { "zone", "u16" }, { "name", "cstr" } },
  PAKCC_CREATE_CHAR_REPLY = { { "result", "u8" }, { "platinum", "u8" } },
  PAKCS_DELETE_CHAR_REQ = { { "slot", "u8" }, { "is_delete", "u8" }, { "name", "cstr" } },
  PAKCC_DELETE_CHAR_REPLY = { { "remaining_time", "u32" }, { "name", "cstr" } },
  PAKCS_SELECT_CHAR_REQ = { { "slot", "u8" }, { "run_mode", "u8" }, { "ride_mode", "u8" },
    { "name", "cstr" } },
  PAKCC_SWITCH_SERVER = { { "port", "u16" }, { "session_id", "u32" }, { "session_seed", "u32" },
    { "ip", "cstr" } },
  PAKCS_CHANGE_MAP_REQ = { { "weight_rate", "u8" }, { "z", "u16" } },
  PAKWC_BILLING_MESSAGE = { { "function_type", "u16" }, { "pay_flag", "u32" } },
  PAKWC_TELEPORT_REPLY = { { "id", "u16" }, { "map", "u16" }, { "x", "f32" }, { "y", "f32" },
    { "move_mode", "u8" }, { "ride_mode", "u8" } },
  PAKCS_NORMAL_CHAT = { { "message", "cstr" } },
  PAKWC_NORMAL_CHAT = { { "char_id", "u16" }, { "message", "cstr" } },
  PAKCS_WHISPER_CHAT = { { "target", "cstr" }, { "message", "cstr" } },
  PAKWC_WHISPER_CHAT = { { "sender", "cstr" }, { "message", "cstr" } },
  PAKCS_SHOUT_CHAT = { { "message", "cstr" } },
  PAKWC_SHOUT_CHAT = { { "sender", "cstr" }, { "message", "cstr" } },
  PAKCS_PARTY_CHAT = { { "message", "cstr" } },
  PAKWC_PARTY_CHAT = { { "char_id", "u16" }, { "message", "cstr" } },
  PAKSW_ANNOUNCE_CHAT = { { "message", "cstr" }, { "name", "cstr" } },
  PAKCS_MOUSE_CMD = { { "target_id", "u16" }, { "x", "f32" }, { "y", "f32" }, { "z", "u16" } },
  PAKWC_MOUSE_CMD = MOUSE_BROADCAST,
  PAKWC_MOVE = MOVE,
  PAKCS_STOP = { { "x", "f32" }, { "y", "f32" } },
  PAKWC_STOP = POSITION_BROADCAST,
  PAKCS_STOP_MOVING = { { "x", "f32" }, { "y", "f32" }, { "z", "u16" } },
  PAKWC_STOP_MOVING = POSITION_BROADCAST,
  PAKCS_SET_POSITION = { { "x", "f32" }, { "y", "f32" } },
  PAKWC_SET_POSITION = POSITION_BROADCAST,
  PAKWC_REMOVE_OBJECT = { { "id", "u16" } },
}

local FIELD_KINDS = {
  u8 = function(abbr, label, names) return ProtoField.uint8(abbr, label, base.DEC, names) end,
  u16 = function(abbr, label) return ProtoField.uint16(abbr, label, base.DEC) end,
  u32 = function(abbr, label) return ProtoField.uint32(abbr, label, base.DEC) end,
  i16 = function(abbr, label) return ProtoField.int16(abbr, label, base.DEC) end,
  f32 = function(abbr, label) return ProtoField.float(abbr, label) end,
  cstr = function(abbr, label) return ProtoField.stringz(abbr, label) end,
  digest = function(abbr, label) return ProtoField.string(abbr, label) end,
  rest = function(abbr, label) return ProtoField.string(abbr, label) end,
  items = function(abbr, label) return ProtoField.bytes(abbr, label) end,
  list_end = function(abbr, label) return ProtoField.none(abbr, label) end,
  list_u8 = function(abbr, label) return ProtoField.uint8(abbr, label .. " (count)", base.DEC) end,
}

-- Declares rose.<packet>.<field> for every field of every layout; a field
-- in a list is rose.<packet>.<list>.<field>.
local declared = {}
local function declare(prefix, layout, names)
  for _, spec in ipairs(layout) do
    local abbr = prefix .. "." .. spec[1]
    if not declared[abbr] then
      local field = FIELD_KINDS[spec[2]](abbr, spec[1], spec[1] == "result" and names or nil)
      declared[abbr] = field
      f[abbr] = field
    end
    if spec[3] then
      declare(abbr, spec[3], nil)
    end
  end
end
for pname, layout in pairs(LAYOUTS) do
  declare("rose." .. pname:lower(), layout, G.results[pname])
end

rose.fields = f
rose.experts = ef

-- Reading a body -------------------------------------------------------------

local function is_hex(tvb, from, n)
  if tvb:len() < from + n then return false end
  local s = tvb:range(from, n):string()
  return s:match("^%x+$") ~= nil
end

-- Adds the fields of `layout` read from `tvb` at `at`; returns the offset
-- after them, or nil if the body ran out.
local read_layout

local FIXED = { u8 = 1, u16 = 2, u32 = 4, i16 = 2, f32 = 4, items = 32 }

-- Offset of the 0 ending the string at `at`, or nil.
local function terminator(tvb, at)
  local len = tvb:len()
  if at >= len then return nil end
  local bytes = tvb:range(at, len - at):bytes()
  for i = 0, bytes:len() - 1 do
    if bytes:get_index(i) == 0 then return at + i end
  end
  return nil
end

-- Adds `n` elements of `sub` (nil: until the body ends) under `list`.
local function read_list(list, tvb, at, abbr, name, sub, n)
  local len = tvb:len()
  local i = 0
  while (n == nil and at < len) or (n ~= nil and i < n) do
    if at >= len then return nil end
    i = i + 1
    local start = at
    local elem = list:add(tvb:range(at, len - at), name .. " #" .. i)
    at = read_layout(elem, tvb, at, abbr, sub, nil)
    if at == nil then return nil end
    elem:set_len(at - start)
  end
  return at
end

local function read_field(tree, tvb, at, prefix, spec, results)
  local name, kind, sub = spec[1], spec[2], spec[3]
  local abbr = prefix .. "." .. name
  local field = declared[abbr]
  local len = tvb:len()
  if FIXED[kind] then
    local n = FIXED[kind]
    if at + n > len then return nil end
    local r = tvb:range(at, n)
    local item = (n == 1) and tree:add(field, r) or tree:add_le(field, r)
    if name == "result" and results and results[r:uint()] == nil then
      item:append_text(" (unknown)")
    end
    return at + n
  elseif kind == "cstr" then
    local zero = terminator(tvb, at)
    if zero == nil then return nil end
    tree:add(field, tvb:range(at, zero - at + 1))
    return zero + 1
  elseif kind == "digest" then
    local n
    if len - at > 64 and is_hex(tvb, at, 64) then n = 64
    elseif is_hex(tvb, at, 32) then n = 32
    else return nil end
    tree:add(field, tvb:range(at, n)):append_text(n == 64 and " (SHA-256 hex)" or " (MD5 hex)")
    return at + n
  elseif kind == "rest" then
    if at < len then tree:add(field, tvb:range(at, len - at)) end
    return len
  elseif kind == "list_end" then
    if at >= len then return at end
    local list = tree:add(field, tvb:range(at, len - at))
    return read_list(list, tvb, at, abbr, name, sub, nil)
  elseif kind == "list_u8" then
    if at + 1 > len then return nil end
    local count = tvb:range(at, 1):uint()
    local list = tree:add(field, tvb:range(at, 1))
    return read_list(list, tvb, at + 1, abbr, name, sub, count)
  end
  return nil
end

read_layout = function(tree, tvb, at, prefix, layout, results)
  for _, spec in ipairs(layout) do
    at = read_field(tree, tvb, at, prefix, spec, results)
    if at == nil then return nil end
  end
  return at
end

-- Framing ----------------------------------------------------------------------

-- Reads the header of the packet at `offset` (at least 6 bytes there).
-- Returns a header table, or nil and why the framing is lost.
local function plain_header(tvb, offset)
  local b = {}
  for i = 0, 5 do b[i] = tvb:range(offset + i, 1):uint() end
  local size = b[0] + 256 * b[1]
  if size < G.header_len or size > G.max_packet_size then
    return nil, "size " .. size .. " outside 6..=2047"
  end
  if b[4] ~= 0 then return nil, "header byte 4 is not zero" end
  return {
    codec = CODEC_PLAIN, size = size, data_len = size, command = b[2] + 256 * b[3],
    checksum = b[5], logical = { [0] = b[0], b[1], b[2], b[3], 0 },
  }
end

local function rose_header(tvb, offset, from_client)
  local map = from_client and G.header_bits.client or G.header_bits.server
  local wire = {}
  for i = 0, 5 do wire[i] = tvb:range(offset + i, 1):uint() end
  local v = { size = 0, command = 0, atv = 0, eav = 0, ev = 0 }
  for p = 0, 39 do
    local l = map[p]
    if l >= ATV_FIRST and l <= ATV_LAST and bit_at(wire, p) == 1 then
      v.atv = v.atv + 2 ^ (l - ATV_FIRST)
    end
  end
  local clear = {}
  for k = 0, 4 do clear[k] = bxor(wire[k], mask(k, v.atv)) end
  for p = 0, 39 do
    local l = map[p]
    if (l < ATV_FIRST or l > ATV_LAST) and bit_at(clear, p) == 1 then
      local fl = OWNER[l]
      v[fl.name] = v[fl.name] + 2 ^ (l - fl.first)
    end
  end
  if v.size < G.header_len or v.size > G.max_packet_size then
    return nil, "size " .. v.size .. " outside 6..=2047"
  end
  if v.ev > v.size - G.header_len then
    return nil, "padding of " .. v.ev .. " bytes in a " .. v.size .. "-byte packet"
  end
  local value = 0
  for _, fl in ipairs(G.logical) do value = value + v[fl.name] * 2 ^ fl.first end
  local logical = {}
  for k = 0, 4 do logical[k] = math.floor(value / 2 ^ (8 * k)) % 256 end
  return {
    codec = CODEC_ROSE, size = v.size, data_len = v.size - v.ev, command = v.command,
    atv = v.atv, eav = v.eav, ev = v.ev, checksum = wire[5], logical = logical,
  }
end

-- The plain reading when the codec is `auto`: it must frame and check.
local function checks_as_plain(tvb, offset)
  local h = plain_header(tvb, offset)
  if not h or tvb:len() - offset < h.size then return false end
  local bytes = {}
  for i = G.header_len, h.size - 1 do bytes[i] = tvb:range(offset + i, 1):uint() end
  return crc8(crc8(0, h.logical, 0, 4), bytes, G.header_len, h.size - 1) == h.checksum
end

local function read_header(tvb, offset, from_client)
  local codec = rose.prefs.codec
  if codec == CODEC_PLAIN or (codec == CODEC_AUTO and checks_as_plain(tvb, offset)) then
    return plain_header(tvb, offset)
  end
  return rose_header(tvb, offset, from_client)
end

-- The plaintext packet (clean header: size = data length, command, 0, 0)
-- and whether its checksum matched.
local function open_packet(tvb, offset, h)
  local plain = {}
  for i = G.header_len, h.size - 1 do
    local b = tvb:range(offset + i, 1):uint()
    if h.codec == CODEC_ROSE then
      b = bxor(b, mask(h.eav + i, h.atv + i))
    end
    plain[i] = b
  end
  local sum = crc8(crc8(0, h.logical, 0, 4), plain, G.header_len, h.data_len - 1)
  local ba = ByteArray.new()
  ba:set_size(h.data_len)
  ba:set_index(0, h.data_len % 256)
  ba:set_index(1, math.floor(h.data_len / 256))
  ba:set_index(2, h.command % 256)
  ba:set_index(3, math.floor(h.command / 256))
  ba:set_index(4, 0)
  ba:set_index(5, 0)
  for i = G.header_len, h.data_len - 1 do ba:set_index(i, plain[i]) end
  return ba, sum == h.checksum
end

-- Direction and dialect ------------------------------------------------------

local function from_client(pinfo)
  local port = rose.prefs.port
  if pinfo.dst_port == port then return true end
  if pinfo.src_port == port then return false end
  return pinfo.dst_port < pinfo.src_port -- Decode As on another port: the lower is the server
end

local function packet_name(dialect, client, command)
  local name = (client and dialect.client or dialect.server)[command]
  if name then return name, true end
  return string.format("0x%04x", command), false
end

-- Framing is lost for good after a bad header: streams (by tcp.stream and
-- direction) and the frame where it happened.
local tcp_stream = Field.new("tcp.stream")
local broken = {}

function rose.init()
  broken = {}
end

local function dissect_pdu(tvb, offset, h, tree, client, dialect)
  local wire = tvb:range(offset, h.size)
  local name, known = packet_name(dialect, client, h.command)
  local t = tree:add(rose, wire, "ROSE " .. name)
  t:add(f.name, wire, name)
  t:add(f.direction, wire, client and "C>S" or "S>C")
  t:add(f.command, wire, h.command)
  t:add(f.size, wire, h.size)
  if not known then t:add_proto_expert_info(ef.unknown) end
  if h.codec == CODEC_ROSE then
    t:add(f.data_len, wire, h.data_len)
    t:add(f.atv, wire, h.atv)
    t:add(f.eav, wire, h.eav)
    t:add(f.ev, wire, h.ev)
  end
  local ba, good = open_packet(tvb, offset, h)
  local sum = t:add(f.checksum, tvb:range(offset + 5, 1))
  t:add(f.checksum_good, tvb:range(offset + 5, 1), good)
  if not good then
    sum:add_proto_expert_info(ef.bad_checksum)
    return name
  end
  if h.data_len > G.header_len then
    local plain = ba:tvb("Decrypted " .. name)
    local body = plain:range(G.header_len, h.data_len - G.header_len)
    t:add(f.body, body)
    local layout = LAYOUTS[name]
    if layout then
      local at = read_layout(t, body:tvb(), 0, "rose." .. name:lower(), layout, G.results[name])
      if at == nil then t:add_proto_expert_info(ef.short_body) end
    end
  elseif LAYOUTS[name] then
    t:add_proto_expert_info(ef.short_body)
  end
  return name
end

function rose.dissector(tvb, pinfo, tree)
  local len = tvb:len()
  if len == 0 then return 0 end
  pinfo.cols.protocol = "ROSE"
  local client = from_client(pinfo)
  local dialect = G.dialects[rose.prefs.dialect] or G.dialects[1]
  local key = tostring(tcp_stream() and tcp_stream().value or "?") .. (client and "c" or "s")
  local names = {}
  -- TCP may call the dissector more than once for a frame (a reassembled
  -- packet, then the segment's own packets): the first call with names
  -- sets the Info column, later ones (which find it set) append to it.
  local function finish()
    if #names == 0 then return end
    local text = table.concat(names, ", ")
    if tostring(pinfo.cols.info):match("^[CS]>[CS] ") then
      pinfo.cols.info:append(", " .. text)
    else
      pinfo.cols.info = (client and "C>S " or "S>C ") .. text
    end
  end
  if broken[key] and broken[key] < pinfo.number then
    local t = tree:add(rose, tvb:range(0, len), "ROSE (not decoded: framing lost earlier)")
    t:add_proto_expert_info(ef.bad_header)
    names[1] = "?"
    finish()
    return len
  end
  local offset = 0
  while offset < len do
    local rest = len - offset
    if rest < G.header_len then
      pinfo.desegment_offset = offset
      pinfo.desegment_len = DESEGMENT_ONE_MORE_SEGMENT
      break
    end
    local h, why = read_header(tvb, offset, client)
    if not h then
      broken[key] = broken[key] or pinfo.number
      local t = tree:add(rose, tvb:range(offset, rest), "ROSE (bad header: " .. why .. ")")
      t:add_proto_expert_info(ef.bad_header, "Bad header: " .. why)
      names[#names + 1] = "?"
      break
    end
    if rest < h.size then
      pinfo.desegment_offset = offset
      pinfo.desegment_len = h.size - rest
      break
    end
    names[#names + 1] = dissect_pdu(tvb, offset, h, tree, client, dialect)
    offset = offset + h.size
  end
  finish()
  return len
end

local registered_port = nil
local function register_port()
  local tcp = DissectorTable.get("tcp.port")
  if registered_port then tcp:remove(registered_port, rose) end
  registered_port = rose.prefs.port
  tcp:add(registered_port, rose)
end

function rose.prefs_changed()
  if registered_port ~= rose.prefs.port then register_port() end
end

register_port()
