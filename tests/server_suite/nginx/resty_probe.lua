-- lua-resty-memcached probe: GET /lua?t=NAME runs one scenario and prints
-- one line per operation: "op => ret1 | ret2 | ..."
local memcached = require "nginx.memcached"

local function fmt(v)
    if type(v) == "string" then
        if #v > 80 then
            return string.format("<str len=%d head=%q>", #v, v:sub(1, 20))
        end
        return string.format("%q", v):gsub("\\\n", "\\n")
    elseif type(v) == "table" then
        local keys = {}
        for k in pairs(v) do keys[#keys + 1] = tostring(k) end
        table.sort(keys)
        local parts = {}
        for _, k in ipairs(keys) do
            local x = v[k]
            if x == nil then x = v[tonumber(k)] end
            parts[#parts + 1] = k .. "=" .. fmt(x)
        end
        return "{" .. table.concat(parts, ",") .. "}"
    end
    return tostring(v)
end

local function show(name, ...)
    local n = select("#", ...)
    local out = {}
    for i = 1, n do out[i] = fmt((select(i, ...))) end
    ngx.say(name, " => ", table.concat(out, " | "))
end

local function conn()
    local m = memcached:new()
    m:set_timeout(3000)
    local ok, err = m:connect("127.0.0.1", tonumber(ngx.var.mc_port))
    if not ok then ngx.say("connect failed: ", err); ngx.exit(200) end
    return m
end

local T = {}

T.basic = function(m)
    show("flush_all", m:flush_all())
    show("set k v", m:set("k", "v"))
    show("get k", m:get("k"))
    show("get missing", m:get("missing"))
    show("set f flags=77", m:set("f", "fv", 0, 77))
    show("get f", m:get("f"))
    show("set maxflags", m:set("mf", "x", 0, 4294967295))
    show("get maxflags", m:get("mf"))
    show("set empty", m:set("e", ""))
    show("get empty", m:get("e"))
    show("set space key 'a b' (escaped)", m:set("a b", "sp"))
    show("get 'a b'", m:get("a b"))
    show("add existing", m:add("k", "x"))
    show("add new", m:add("k2", "x2"))
    show("replace missing", m:replace("nope", "x"))
    show("replace k", m:replace("k", "v2"))
    show("append k", m:append("k", "-app"))
    show("prepend k", m:prepend("k", "pre-"))
    show("get k", m:get("k"))
    show("append missing", m:append("nope", "x"))
    show("prepend missing", m:prepend("nope", "x"))
    show("delete k2", m:delete("k2"))
    show("delete k2 again", m:delete("k2"))
    show("multi get", m:get({"k", "missing", "f", "e"}))
end

T.cas = function(m)
    m:flush_all()
    show("set c 1", m:set("c", "1"))
    local v, f, cas, err = m:gets("c")
    show("gets c (cas numeric?)", v, f, type(tonumber(cas)) == "number", err)
    show("cas good", m:cas("c", "2", cas))
    show("cas stale", m:cas("c", "3", cas))
    show("cas missing", m:cas("nokey", "3", cas))
    local _, _, cas2 = m:gets("c")
    show("cas unique changed", cas2 ~= cas)
    show("get c", m:get("c"))
    show("gets missing", m:gets("missing"))
    local r = m:gets({"c", "missing"})
    local t = {}
    for k, v in pairs(r or {}) do t[k] = {v[1], v[2], type(tonumber(v[3]))} end
    show("multi gets", t)
    -- last: memcached does not swallow the data line after a bad cas line
    show("cas bad unique", m:cas("c", "3", "abc"))
    show("stray line after bad cas", m.sock:receive())
    show("get c after it", m:get("c"))
end

T.incr = function(m)
    m:flush_all()
    show("set n 10", m:set("n", "10"))
    show("incr n 5", m:incr("n", 5))
    show("decr n 20", m:decr("n", 20))
    show("incr missing", m:incr("missing", 1))
    show("set s abc", m:set("s", "abc"))
    show("incr non-numeric", m:incr("s", 1))
    show("incr bad delta", m:incr("n", "x"))
    show("incr negative delta", m:incr("n", "-1"))
    show("set max", m:set("mx", "18446744073709551615"))
    show("incr wrap", m:incr("mx", 1))
    show("set 99", m:set("g", "99"))
    show("incr grows", m:incr("g", 1))
    show("get g", m:get("g"))
    show("set lead space", m:set("ls", " 5"))
    show("incr lead space", m:incr("ls", 1))
    show("set trail space", m:set("ts", "5 "))
    show("incr trail space", m:incr("ts", 1))
    show("get ts", m:get("ts"))
    show("set 12abc", m:set("ab", "12abc"))
    show("incr 12abc", m:incr("ab", 1))
    show("set neg", m:set("ng", "-1"))
    show("incr neg", m:incr("ng", 1))
    show("set huge", m:set("hg", "184467440737095516150"))
    show("incr huge", m:incr("hg", 1))
    show("set decr 100", m:set("d", "100"))
    show("decr to 99 (len shrink)", m:decr("d", 1))
    show("get d", m:get("d"))
    show("incr delta too big", m:incr("n", "18446744073709551616"))
end

T.touch = function(m)
    m:flush_all()
    show("set t exp=0", m:set("t", "tv"))
    show("touch t 1", m:touch("t", 1))
    show("touch missing", m:touch("missing", 10))
    show("set t2 exp=1", m:set("t2", "t2v", 1))
    show("touch t2 100", m:touch("t2", 100))
    ngx.sleep(2.2)
    show("get t after 2s", m:get("t"))
    show("get t2 after 2s", m:get("t2"))
    show("set neg exptime", m:set("ne", "x", -1))
    show("get neg", m:get("ne"))
    show("set absolute past", m:set("ap", "x", 100000000))
    show("get absolute past", m:get("ap"))
    show("set absolute future", m:set("af", "x", ngx.time() + 100))
    show("get absolute future", m:get("af"))
end

T.flush = function(m)
    show("set a", m:set("a", "1"))
    show("flush_all 2", m:flush_all(2))
    show("get a (before delay)", m:get("a"))
    show("set b", m:set("b", "2"))
    ngx.sleep(3.1)
    show("get a (after delay)", m:get("a"))
    show("get b (after delay)", m:get("b"))
    show("set c", m:set("c", "3"))
    show("get c", m:get("c"))
    show("flush_all", m:flush_all())
    show("get c", m:get("c"))
    show("flush_all bad arg", m:flush_all("x"))
end

local function stat_table(m, sub)
    local lines, err = m:stats(sub)
    if not lines then return nil, err end
    local t, names = {}, {}
    for _, l in ipairs(lines) do
        local k, v = l:match("^STAT (%S+) ?(.*)$")
        if k then t[k] = v; names[#names + 1] = k end
    end
    table.sort(names)
    return t, nil, names
end

T.stats = function(m)
    local s, err, names = stat_table(m)
    show("stats has pid,uptime,time,version,curr_items,total_items,bytes,get_hits,get_misses,cmd_get,cmd_set,evictions",
         s.pid ~= nil, s.uptime ~= nil, s.time ~= nil, s.version ~= nil, s.curr_items ~= nil,
         s.total_items ~= nil, s.bytes ~= nil, s.get_hits ~= nil, s.get_misses ~= nil,
         s.cmd_get ~= nil, s.cmd_set ~= nil, s.evictions ~= nil, err)
    show("stats limit_maxbytes", s.limit_maxbytes)
    ngx.say("INFO stats names: ", table.concat(names, ","))
    for _, sub in ipairs({"settings", "items", "slabs", "sizes", "conns", "bogus", "detail dump"}) do
        local r, e, nm = stat_table(m, sub)
        show("stats " .. sub .. " (ok, err)", r ~= nil, e)
        if nm then ngx.say("INFO stats ", sub, " names: ", table.concat(nm, ",")) end
    end
    local st = stat_table(m, "settings") or {}
    show("settings item_size_max", st.item_size_max)
    show("settings maxbytes", st.maxbytes)
    show("version", m:version())
    show("verbosity 1", m:verbosity(1))
    show("verbosity 0", m:verbosity(0))
    show("verbosity x", m:verbosity("x"))
end

T.limits = function(m)
    m:flush_all()
    local k250 = string.rep("k", 250)
    local k251 = string.rep("k", 251)
    show("set key 250", m:set(k250, "x"))
    show("get key 250", m:get(k250))
    show("set key 251", m:set(k251, "x"))
    -- memcached answers CLIENT_ERROR without swallowing the data line, which
    -- then draws an extra "ERROR": read it, then go on on a fresh connection
    show("stray line after bad set", m.sock:receive())
    m:close(); m = conn()
    show("get key 251", m:get(k251))
    show("delete key 251", m:delete(k251))
    show("incr key 251", m:incr(k251, 1))
    show("touch key 251", m:touch(k251, 1))
    show("get after errors still works", m:get(k250))
    local big = string.rep("v", 500 * 1024)
    show("set 500KB", m:set("big", big))
    local v = m:get("big")
    show("get 500KB equal", v == big, v and #v)
    local emb = "a\r\nEND\r\nVALUE x 0 1\r\nb\r\n"
    show("set embedded END", m:set("emb", emb))
    show("get embedded END", m:get("emb"))
    show("set 1MB+ (too large)", m:set("huge", string.rep("h", 1100000)))
    show("get after too large", m:get("huge"))
    show("connection still usable", m:get("emb"))
    -- exact -I boundary: value + key + 59 bytes (flags 0)
    local lim = 1048576 - 59 - 2
    show("set at limit (key 'b1', " .. lim .. ")", m:set("b1", string.rep("z", lim)))
    show("set limit+1", m:set("b1", string.rep("z", lim + 1)))
    show("set at limit flags=1 (needs 4 more)", m:set("b2", string.rep("z", lim), 0, 1))
    show("set limit-4 flags=1", m:set("b2", string.rep("z", lim - 4), 0, 1))
end

T.quit = function(m)
    show("set q", m:set("q", "1"))
    show("quit", m:quit())
    show("get after quit", m:get("q"))
    local m2 = conn()
    show("new conn get q", m2:get("q"))
    show("set_keepalive", m2:set_keepalive(1000, 10))
    local m3 = conn()
    show("reused times >0", m3:get_reused_times() > 0)
    show("get q on reused", m3:get("q"))
    m3:close()
end

local t = ngx.var.arg_t
if not T[t] then ngx.say("no such test"); return end
local m = conn()
T[t](m)
pcall(m.close, m)
