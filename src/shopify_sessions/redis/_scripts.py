"""The Lua scripts of the Redis storage. Most read and write one key, so each is atomic on
one Redis and on a cluster alike. ``STORE_LISTED`` and ``REPLACE_LISTED`` write a session
and its shop index together, checking both before writing either: they run where the two
keys are in one slot (one Redis, or a cluster under a key prefix with a hash tag); on a
cluster, where a session and its shop index live in different slots, ``STORE`` and
``INDEX_ADD`` run one after the other, and ``UNSTORE`` undoes the first when the second
fails.

Errors the scripts raise start with ``shopify_sessions:`` so that they are told apart
from the server's own.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Script:
    """A Lua script and its SHA-1 digest (what ``EVALSHA`` names it by)."""

    text: str
    sha: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "sha", hashlib.sha1(self.text.encode("utf-8")).hexdigest())


#: Shared by the scripts: what a session value and a shop index look like.
_PRELUDE = r"""
local function is_session(raw)
  return string.sub(raw, 1, 2) == '[['
end
local function index_items(raw)
  if string.sub(raw, 1, 1) ~= '[' or is_session(raw) then return nil end
  local ok, items = pcall(cjson.decode, raw)
  if not ok or type(items) ~= 'table' then return nil end
  for _, item in ipairs(items) do
    if type(item) ~= 'string' then return nil end
  end
  return items
end
local escapes = {['"'] = '\\"', ['\\'] = '\\\\', ['\b'] = '\\b', ['\f'] = '\\f',
                 ['\n'] = '\\n', ['\r'] = '\\r', ['\t'] = '\\t'}
local function quote(text)
  local escaped = string.gsub(text, '[%z\1-\31"\\]', function(c)
    return escapes[c] or string.format('\\u%04x', string.byte(c))
  end)
  return '"' .. escaped .. '"'
end
local function index_add(key, item, quoted)
  local raw = redis.call('GET', key)
  if not raw then
    redis.call('SET', key, '[' .. quoted .. ']')
    return 1
  end
  local items = index_items(raw)
  for _, present in ipairs(items) do
    if present == item then return 0 end
  end
  local parts = {}
  for _, present in ipairs(items) do parts[#parts + 1] = quote(present) end
  parts[#parts + 1] = quoted
  redis.call('SET', key, '[' .. table.concat(parts, ',') .. ']')
  return 1
end
local function no_index(key)
  local raw = redis.call('GET', key)
  if raw and not index_items(raw) then
    return redis.error_reply('shopify_sessions: ' .. key .. ' holds no shop index')
  end
  return nil
end
local function set(key, value, at)
  if at ~= '' then
    redis.call('SET', key, value, 'PXAT', at)
  else
    redis.call('SET', key, value)
  end
end
"""

#: KEYS[1] the session key; ARGV: the value, its expiry (epoch ms, or ''), the JSON
#: ``["shop",...]`` pair of its shop. Stores the value over a session (or nothing) and
#: returns ``{old, moved, pttl}``: the value it replaced ('' if none), 1 if that was of
#: another shop, and the old key's time to live in ms (what ``UNSTORE`` needs to put the
#: old value back).
STORE = Script(
    _PRELUDE
    + """
local old = redis.call('GET', KEYS[1])
if old and not is_session(old) then
  return redis.error_reply('shopify_sessions: ' .. KEYS[1] .. ' holds no session')
end
local pttl = redis.call('PTTL', KEYS[1])
set(KEYS[1], ARGV[1], ARGV[2])
if not old then return {'', 0, pttl} end
if string.find(old, ARGV[3], 1, true) then return {old, 0, pttl} end
return {old, 1, pttl}
"""
)

#: KEYS[1] the session key, KEYS[2] its shop's index; ARGV: as ``STORE``, then the session
#: key and the same as a JSON string. ``STORE`` and ``INDEX_ADD`` in one: both keys are
#: checked before either is written, so the session is stored and listed, or neither.
#: Returns ``STORE``'s answer.
STORE_LISTED = Script(
    _PRELUDE
    + """
local old = redis.call('GET', KEYS[1])
if old and not is_session(old) then
  return redis.error_reply('shopify_sessions: ' .. KEYS[1] .. ' holds no session')
end
local refused = no_index(KEYS[2])
if refused then return refused end
local pttl = redis.call('PTTL', KEYS[1])
set(KEYS[1], ARGV[1], ARGV[2])
index_add(KEYS[2], ARGV[4], ARGV[5])
if not old then return {'', 0, pttl} end
if string.find(old, ARGV[3], 1, true) then return {old, 0, pttl} end
return {old, 1, pttl}
"""
)

#: KEYS[1] the session key; ARGV: the value a ``STORE`` wrote, the value it replaced ('' if
#: none), and that value's time to live in ms (negative: none). Puts the old value back,
#: only if the key still holds what the store wrote: 1 if undone, else 0.
UNSTORE = Script(
    """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if ARGV[2] == '' then
  redis.call('DEL', KEYS[1])
elseif tonumber(ARGV[3]) > 0 then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
else
  redis.call('SET', KEYS[1], ARGV[2])
end
return 1
"""
)

#: KEYS[1] the session key; ARGV: the value expected there, the new value, its expiry.
#: Stores the new value only over the expected one: 1 if stored, else 0.
REPLACE = Script(
    _PRELUDE
    + """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
set(KEYS[1], ARGV[2], ARGV[3])
return 1
"""
)

#: KEYS[1] the session key, KEYS[2] the new session's shop index; ARGV: as ``REPLACE``,
#: then the session key and the same as a JSON string. ``REPLACE`` and ``INDEX_ADD`` in
#: one, both keys checked before either is written: 1 if stored and listed, else 0.
REPLACE_LISTED = Script(
    _PRELUDE
    + """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
local refused = no_index(KEYS[2])
if refused then return refused end
set(KEYS[1], ARGV[2], ARGV[3])
index_add(KEYS[2], ARGV[4], ARGV[5])
return 1
"""
)

#: KEYS[1] the session key. Deletes a session and returns its value (nil if absent);
#: refuses to delete a value that is no session.
DELETE = Script(
    _PRELUDE
    + """
local old = redis.call('GET', KEYS[1])
if not old then return false end
if not is_session(old) then
  return redis.error_reply('shopify_sessions: ' .. KEYS[1] .. ' holds no session')
end
redis.call('DEL', KEYS[1])
return old
"""
)

#: KEYS[1] a shop index; ARGV: a session key, and the same as a JSON string. Adds the key
#: unless present (1 if added), writing JSON as JavaScript's JSON.stringify does.
INDEX_ADD = Script(
    _PRELUDE
    + """
local raw = redis.call('GET', KEYS[1])
if not raw then
  redis.call('SET', KEYS[1], '[' .. ARGV[2] .. ']')
  return 1
end
local items = index_items(raw)
if not items then
  return redis.error_reply('shopify_sessions: ' .. KEYS[1] .. ' holds no shop index')
end
for _, item in ipairs(items) do
  if item == ARGV[1] then return 0 end
end
local parts = {}
for _, item in ipairs(items) do parts[#parts + 1] = quote(item) end
parts[#parts + 1] = ARGV[2]
redis.call('SET', KEYS[1], '[' .. table.concat(parts, ',') .. ']')
return 1
"""
)

#: KEYS[1] a shop index; ARGV: session keys. Removes them from the index (deleting an
#: index left empty) and returns how many it held.
INDEX_REMOVE = Script(
    _PRELUDE
    + """
local raw = redis.call('GET', KEYS[1])
if not raw then return 0 end
local items = index_items(raw)
if not items then
  return redis.error_reply('shopify_sessions: ' .. KEYS[1] .. ' holds no shop index')
end
local drop = {}
for i = 1, #ARGV do drop[ARGV[i]] = true end
local parts = {}
for _, item in ipairs(items) do
  if not drop[item] then parts[#parts + 1] = quote(item) end
end
if #parts == #items then return 0 end
if #parts == 0 then
  redis.call('DEL', KEYS[1])
else
  redis.call('SET', KEYS[1], '[' .. table.concat(parts, ',') .. ']')
end
return #items - #parts
"""
)

#: KEYS[1] a lock; ARGV: its owner's token, its lease in ms. Renews the lease only if that
#: owner still holds the lock: 1 if renewed, 0 if it was lost.
RENEW = Script(
    """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""
)

#: KEYS[1] a lock; ARGV[1] its owner's token. Deletes the lock only if that owner still
#: holds it: 1 if released, 0 if its lease had expired (and maybe someone else holds it).
UNLOCK = Script(
    """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
)
