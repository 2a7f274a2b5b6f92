"""Stand-in for ai.backend.common.msgpack: the same defaults over the real `msgpack` library.

The original adds ext hooks for Backend.AI types (UUID, datetime, Decimal, paths, enums, ...);
a runner's `status` reply is a plain map, so those hooks never fire on this path and are left out.
"""

from typing import Any

import msgpack as _msgpack

DEFAULT_PACK_OPTS = {"use_bin_type": True, "strict_types": True}
DEFAULT_UNPACK_OPTS = {"raw": False, "strict_map_key": False, "use_list": False}


def packb(data: Any, **kwargs: Any) -> bytes:
    return _msgpack.packb(data, **{**DEFAULT_PACK_OPTS, **kwargs})


def unpackb(packed: bytes, ext_hook_mapping: Any = None, **kwargs: Any) -> Any:
    return _msgpack.unpackb(packed, **{**DEFAULT_UNPACK_OPTS, **kwargs})
