"""Replay drawing commands into an SVG picture (what Jupyter front-ends show).

The agent's clients get the commands themselves; notebooks cannot run the original's JavaScript
player, so they get the end state as SVG: one element per object (`id="obj-N"`), in creation
order, after every update. Groups and animation commands change nothing in a still picture.
"""
from __future__ import annotations

from html import escape
from typing import Any

# positional fields of each object type, after the type name
_FIELDS = {
    "line": ("x1", "y1", "x2", "y2", "color"),
    "circle": ("x", "y", "radius", "border", "fill", "angle"),
    "rect": ("x", "y", "width", "height", "border", "fill", "angle"),
    "triangle": ("x", "y", "width", "height", "border", "fill", "angle"),
}


def _paint(attr: str, hex_color: Any) -> str:
    """`stroke="#rrggbb" stroke-opacity="0.5"` from `#rrggbbaa`."""
    value = str(hex_color or "#00000000").lstrip("#")
    alpha = int(value[6:8], 16) / 255 if len(value) >= 8 else 1.0
    return f'{attr}="#{escape(value[:6])}" {attr}-opacity="{alpha:.3g}"'


def _num(value: Any) -> str:
    try:
        return f"{float(value):.6g}"
    except (TypeError, ValueError):
        return "0"


def _element(obj_id: int, obj: dict[str, Any]) -> str:
    kind, angle = obj["type"], float(obj.get("angle") or 0)
    n = _num
    if kind == "line":
        cx, cy = (float(obj["x1"]) + float(obj["x2"])) / 2, (float(obj["y1"]) + float(obj["y2"])) / 2
        body = (f'<line x1="{n(obj["x1"])}" y1="{n(obj["y1"])}" x2="{n(obj["x2"])}" y2="{n(obj["y2"])}" '
                f'{_paint("stroke", obj["color"])}')
    elif kind == "circle":
        cx, cy = float(obj["x"]), float(obj["y"])
        body = f'<circle cx="{n(cx)}" cy="{n(cy)}" r="{n(obj["radius"])}"'
    elif kind == "rect":
        x, y, w, h = (float(obj[k]) for k in ("x", "y", "width", "height"))
        cx, cy = x + w / 2, y + h / 2
        body = f'<rect x="{n(x)}" y="{n(y)}" width="{n(w)}" height="{n(h)}"'
    else:  # triangle: centred on (x, y), pointing up before rotation
        x, y, w, h = (float(obj[k]) for k in ("x", "y", "width", "height"))
        cx, cy = x, y
        points = f"{n(x)},{n(y - h / 2)} {n(x + w / 2)},{n(y + h / 2)} {n(x - w / 2)},{n(y + h / 2)}"
        body = f'<polygon points="{points}"'
    if kind != "line":
        body += f' {_paint("stroke", obj["border"])} {_paint("fill", obj["fill"])}'
    transform = f' transform="rotate({n(angle)} {n(cx)} {n(cy)})"' if angle else ""
    return f'{body} id="obj-{obj_id}" class="{kind}"{transform}/>'


def render_svg(commands: list[tuple[Any, ...]], canvas_id: int) -> str:
    """The SVG document of canvas `canvas_id` after `commands`."""
    width, height, bg = 0.0, 0.0, "#ffffffff"
    objects: dict[int, dict[str, Any]] = {}
    layers: list[tuple[str, Any]] = []  # ("obj", id) or ("fill", fill record), in drawing order
    fills: list[dict[str, Any]] = []  # open begin_fill regions (innermost last)
    for cmd in commands:
        if not cmd or cmd[0] != canvas_id or len(cmd) < 2:
            continue
        op = cmd[1]
        if op == "canvas":
            width, height, bg = float(cmd[2]), float(cmd[3]), cmd[4]
        elif op == "bgcolor":
            bg = cmd[2]
        elif op == "obj":
            obj_id, args = cmd[2], cmd[3]
            objects[obj_id] = {"type": args[0], **dict(zip(_FIELDS.get(args[0], ()), args[1:]))}
            layers.append(("obj", obj_id))
            if fills and args[0] == "line":
                fills[-1]["lines"].append(obj_id)
        elif op == "update" and cmd[2] in objects:
            obj, prop, value = objects[cmd[2]], cmd[3], cmd[4]
            if prop == "rotate":
                obj["angle"] = float(obj.get("angle") or 0) + float(value)
            else:
                obj[prop] = value
        elif op == "begin-fill":
            record = {"color": cmd[2], "lines": []}
            fills.append(record)
            layers.append(("fill", record))
        elif op == "end-fill" and fills:
            fills.pop()
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{_num(width)}" height="{_num(height)}" '
             f'viewBox="0 0 {_num(width)} {_num(height)}">',
             f'<rect x="0" y="0" width="100%" height="100%" class="background" {_paint("fill", bg)}/>']
    for kind, ref in layers:
        if kind == "obj":
            parts.append(_element(ref, objects[ref]))
        elif ref["lines"]:
            pts = [(objects[i]["x1"], objects[i]["y1"]) for i in ref["lines"]]
            pts.append((objects[ref["lines"][-1]]["x2"], objects[ref["lines"][-1]]["y2"]))
            points = " ".join(f"{_num(x)},{_num(y)}" for x, y in pts)
            parts.append(f'<polygon points="{points}" class="fill" stroke="none" {_paint("fill", ref["color"])}/>')
    parts.append("</svg>")
    return "\n".join(parts)
