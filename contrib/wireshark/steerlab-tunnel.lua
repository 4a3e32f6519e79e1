-- Wireshark dissector for steerlab's tunnel framing (docs/tunnel-framing.md), the frames
-- the agent and the gateway exchange inside the decrypted TLS tunnel:
--
--   kind: u8 | flow: u32 (big endian) | len: u16 (big endian) | len bytes of payload
--
-- Install: copy this file into Wireshark's personal Lua plugins folder
-- (~/.local/lib/wireshark/plugins/ on Linux; Help > About Wireshark > Folders shows it),
-- or load it for one run: tshark -X lua_script:contrib/wireshark/steerlab-tunnel.lua -r RUN.pcapng
--
-- The tunnel must be decrypted first: a steerlab pcapng export carries its TLS secrets,
-- so nothing else is needed (docs/replay.md). It registers on TLS port 443 (the
-- gateways' port; DoH and the GSLB API keep HTTP through their ALPN) and as a heuristic
-- for TLS on other ports (real mode's fallback ports); other TLS ports also work with
-- Decode As (TLS port, steerlab). Filter with `steerlab`, e.g.
-- `steerlab.kind == 1` for the Open frames, `steerlab.target contains "box.com"`.

local proto = Proto("steerlab", "steerlab tunnel framing")

local HEADER_LEN = 7
local MAX_PAYLOAD = 16 * 1024

local kinds = {
    [1] = "Open",
    [2] = "Opened",
    [3] = "Refused",
    [4] = "Data",
    [5] = "Close",
    [6] = "Keepalive",
    [7] = "KeepaliveAck",
    [8] = "Hello",
}

local f = {
    kind = ProtoField.uint8("steerlab.kind", "Kind", base.DEC, kinds),
    flow = ProtoField.uint32("steerlab.flow", "Flow", base.DEC),
    len = ProtoField.uint16("steerlab.len", "Payload length", base.DEC),
    target = ProtoField.string("steerlab.target", "Target"),
    process = ProtoField.string("steerlab.process", "Process"),
    reason = ProtoField.string("steerlab.reason", "Reason"),
    user = ProtoField.string("steerlab.user", "User"),
    seq = ProtoField.uint64("steerlab.seq", "Sequence number", base.DEC),
    data = ProtoField.bytes("steerlab.data", "Flow data"),
}
proto.fields = { f.kind, f.flow, f.len, f.target, f.process, f.reason, f.user, f.seq, f.data }

local bad_frame = ProtoExpert.new("steerlab.bad_frame", "Not a tunnel frame (the tunnel ends here)",
    expert.group.MALFORMED, expert.severity.ERROR)
proto.experts = { bad_frame }

-- Whether `buf` at `offset` starts like a frame: a known kind and a possible length.
local function plausible(buf, offset)
    local kind = buf(offset, 1):uint()
    local len = buf(offset + 5, 2):uint()
    return kinds[kind] ~= nil and len <= MAX_PAYLOAD
end

-- One whole frame at `offset` (its header and `len` payload bytes are there); returns
-- the summary for the Info column.
local function dissect_frame(buf, tree, offset, len)
    local kind = buf(offset, 1):uint()
    local flow = buf(offset + 1, 4):uint()
    local name = kinds[kind]
    local item = tree:add(proto, buf(offset, HEADER_LEN + len))
    item:add(f.kind, buf(offset, 1))
    item:add(f.flow, buf(offset + 1, 4))
    item:add(f.len, buf(offset + 5, 2))
    local payload = offset + HEADER_LEN
    local summary = name .. " flow " .. flow
    if kind == 1 then
        local text = len > 0 and buf(payload, len):string() or ""
        local newline = text:find("\n", 1, true)
        local target = newline and text:sub(1, newline - 1) or text
        local process = newline and text:sub(newline + 1) or ""
        item:add(f.target, buf(payload, #target), target)
        if newline then
            local at = payload + newline
            local range = #process > 0 and buf(at, #process) or buf(payload, len)
            item:add(f.process, range, process)
        end
        summary = summary .. " " .. target .. " (" .. process .. ")"
    elseif kind == 3 then
        local reason = len > 0 and buf(payload, len):string() or ""
        if len > 0 then item:add(f.reason, buf(payload, len)) end
        summary = summary .. ": " .. reason
    elseif kind == 4 then
        if len > 0 then item:add(f.data, buf(payload, len)) end
        summary = summary .. ", " .. len .. " bytes"
    elseif kind == 6 or kind == 7 then
        if len == 8 then
            item:add(f.seq, buf(payload, 8))
            summary = name .. " " .. buf(payload, 8):uint64():tonumber()
        else
            item:add_proto_expert_info(bad_frame, name .. ": the sequence number is not 8 bytes")
        end
    elseif kind == 8 then
        local user = len > 0 and buf(payload, len):string() or ""
        if len > 0 then item:add(f.user, buf(payload, len)) end
        summary = name .. " " .. user
    end
    item:append_text(": " .. summary)
    return summary
end

-- Every frame in `buf`. When a frame continues in a later segment or record, asks the
-- layer below for the rest (desegment_offset/len) and, as Wireshark wants then, claims
-- the whole buffer.
local function dissect(buf, pinfo, tree)
    local total = buf:len()
    local offset = 0
    local summaries = {}
    while offset < total do
        local left = total - offset
        if left < HEADER_LEN then
            pinfo.desegment_offset = offset
            pinfo.desegment_len = DESEGMENT_ONE_MORE_SEGMENT
            break
        end
        if not plausible(buf, offset) then
            local item = tree:add(proto, buf(offset, left))
            item:add_proto_expert_info(bad_frame)
            break
        end
        local len = buf(offset + 5, 2):uint()
        if left < HEADER_LEN + len then
            pinfo.desegment_offset = offset
            pinfo.desegment_len = HEADER_LEN + len - left
            break
        end
        summaries[#summaries + 1] = dissect_frame(buf, tree, offset, len)
        offset = offset + HEADER_LEN + len
    end
    if #summaries > 0 then
        local text = table.concat(summaries, "; ")
        -- A packet can end one reassembled frame and hold more: one call each.
        if tostring(pinfo.cols.protocol) == "steerlab" then
            pinfo.cols.info:append("; " .. text)
        else
            pinfo.cols.protocol = "steerlab"
            pinfo.cols.info = text
        end
    end
    return total
end

function proto.dissector(buf, pinfo, tree)
    return dissect(buf, pinfo, tree)
end

-- Other ports: only what starts like the agent's first frames (an Open, a Hello or a
-- Keepalive on flow 0).
local function heuristic(buf, pinfo, tree)
    if buf:len() < HEADER_LEN or not plausible(buf, 0) then
        return false
    end
    local kind = buf(0, 1):uint()
    local flow = buf(1, 4):uint()
    local first = kind == 1 or ((kind == 6 or kind == 8) and flow == 0)
    if not first then
        return false
    end
    dissect(buf, pinfo, tree)
    return true
end

DissectorTable.get("tls.port"):add(443, proto)
proto:register_heuristic("tls", heuristic)
-- "Decode As" on plain TCP (e.g. tshark -d tcp.port==4443,steerlab) for framing captured
-- outside TLS.
DissectorTable.get("tcp.port"):add_for_decode_as(proto)
