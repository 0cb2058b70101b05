"""The three stages of the batched 2.5D raycaster, as plain torch functions.

`renderer.Renderer` compiles each stage separately (per-column maths stays per column) and calls
them in order:

1. `cast_walls`: one ray per image column against the wall grid. Exact and loop-free: the first
   `n` crossings of vertical grid lines and of horizontal grid lines are tested at once, the first
   solid cell entered wins. Rays with no answer inside that chunk are cast again (only those) on
   the next chunk of crossings by the caller.
2. `column_tables`: per column, the wall's colours and image band, and the nearest `m` objects the
   ray meets in front of the wall, each as a layer (image band, depth, colours, ids).
3. `shade_pixels`: per pixel, the nearest covering object layer, else wall, floor or ceiling.

Conventions: rays are d = f + u * l (f forward, l left), so a point at ray parameter s has z-depth
exactly s. Image rows have vertical slope v (up positive): a pixel at ray parameter s sees height
h + s * v. Everything per pixel is 32-bit: float32 depth, int32 ids, int32 packed RGBA colour
(little-endian bytes r, g, b, a).
"""

from __future__ import annotations

import torch

INF = float("inf")
ALPHA = -16777216  # 0xFF000000 as int32: opaque alpha byte of a packed colour
LIGHT = (0.6, 0.8)  # world direction the object side-lighting comes from (unit vector)


def pack_rgb(rgb: torch.Tensor) -> torch.Tensor:
    """float [..., 3] in [0, 255] -> packed int32 [...] (bytes r, g, b, 255 in memory order)."""
    c = rgb.round().clamp(0, 255).to(torch.int32)
    return c[..., 0] | (c[..., 1] << 8) | (c[..., 2] << 16) | ALPHA


def pack3(r: torch.Tensor, g: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """float channels in [0, 255] -> packed int32 (bytes r, g, b, 255 in memory order)."""
    def q(x: torch.Tensor) -> torch.Tensor:
        return x.round().clamp(0, 255).to(torch.int32)

    return q(r) | (q(g) << 8) | (q(b) << 16) | ALPHA


def _safe(d: torch.Tensor) -> torch.Tensor:
    """Direction components away from 0 (sign kept), so divisions stay finite."""
    return torch.where(d >= 0, d.clamp(min=1e-9), d.clamp(max=-1e-9))


def ray_directions(pose: torch.Tensor, u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Column ray directions (dx, dy) [B, W] from poses [B, 3] and column offsets u [W]."""
    c = torch.cos(pose[:, 2:3])
    s = torch.sin(pose[:, 2:3])
    return c - u * s, s + u * c


def cast_walls(ox: torch.Tensor, oy: torch.Tensor, dx: torch.Tensor, dy: torch.Tensor, base: torch.Tensor,
               solid: torch.Tensor, look: torch.Tensor, n0: int, n: int, rows: int, cols: int, cell: float):
    """First solid cell entered by each ray among its grid-line crossings n0 .. n0 + n - 1.

    Rays broadcast over ox, oy, dx, dy and base. `solid` (bool) and `look` (int32) are flat over the
    pool padded with a ring of solid cells, [S, rows + 2, cols + 2]; `base` (int64) is the flat
    offset of the ray's scene. Cells off the grid clamp onto the ring, so every ray ends.
    Returns (s, x_face, front, limit): the hit's ray parameter (inf when none in this chunk),
    whether it is on a vertical grid line (an x-facing wall face), the look index of the free cell
    in front of that face, and the parameter up to which both families of lines were examined (a
    hit with s <= limit is final). Crossings run along dim -2 so that rays stay the contiguous,
    vectorised dimension.
    """
    cp = cols + 2
    dxs, dys = _safe(dx), _safe(dy)
    gx, gy = ox / cell, oy / cell
    fx, fy = torch.floor(gx), torch.floor(gy)
    px, py = dx > 0, dy > 0
    stx = torch.where(px, 1.0, -1.0)
    sty = torch.where(py, 1.0, -1.0)
    dsx = cell / dxs.abs()  # ray parameter between successive vertical lines
    dsy = cell / dys.abs()
    ox_frac = torch.where(px, fx + 1 - gx, gx - fx)  # grid units to the first vertical line
    oy_frac = torch.where(py, fy + 1 - gy, gy - fy)
    # crossing number c (c = n0 + k): the vertical line is at ray parameter (ox_frac + c) * dsx and
    # enters column fx + stx * (c + 1) in row floor(gy + (ox_frac + c) * bx); likewise for rows.
    # Written per absolute c so that any chunking gives bit-identical results.
    bx, by = dsx * (dy / cell), dsy * (dx / cell)
    c = torch.arange(n0, n0 + n, device=dx.device, dtype=torch.float32)[:, None]

    def e(t: torch.Tensor) -> torch.Tensor:
        return t[..., None, :]

    ix = torch.floor(e(gy) + (e(ox_frac) + c) * e(bx)).clamp(-1, rows)
    jx = (e(fx) + e(stx) * (c + 1)).clamp(-1, cols)
    iy = (e(fy) + e(sty) * (c + 1)).clamp(-1, rows)
    jy = torch.floor(e(gx) + (e(oy_frac) + c) * e(by)).clamp(-1, cols)
    b = e(base)
    hit_x = solid[b + ((ix + 1) * cp + jx + 1).to(torch.int64)]
    hit_y = solid[b + ((iy + 1) * cp + jy + 1).to(torch.int64)]
    # crossing indices as float32 (exact small integers): an int32 min-reduction over this where() fails to
    # compile with torch 2.11's inductor on CUDA (a loop-carried int32/int64 mismatch in the Triton kernel)
    ci = torch.arange(n0, n0 + n, device=dx.device, dtype=torch.float32)[:, None]
    end = float(n0 + n)
    nx = torch.where(hit_x, ci, end).amin(-2)  # first crossing that enters a solid cell
    ny = torch.where(hit_y, ci, end).amin(-2)
    sx = torch.where(nx < end, (ox_frac + nx) * dsx, INF)
    sy = torch.where(ny < end, (oy_frac + ny) * dsy, INF)
    x_face = sx <= sy
    s = torch.minimum(sx, sy)
    # the free cell in front of the face that was hit (same formulas as in the crossing loop)
    fi = torch.where(x_face, torch.floor(gy + (ox_frac + nx) * bx), fy + sty * ny).clamp(-1, rows)
    fj = torch.where(x_face, fx + stx * nx, torch.floor(gx + (oy_frac + ny) * by)).clamp(-1, cols)
    front = look[base + ((fi + 1) * cp + fj + 1).to(torch.int64)]
    limit = torch.minimum((ox_frac + (end - 1)) * dsx, (oy_frac + (end - 1)) * dsy)
    return s, x_face, front, limit


def walls_first_pass(pose: torch.Tensor, scene_idx: torch.Tensor, u: torch.Tensor, solid: torch.Tensor,
                     look: torch.Tensor, n: int, rows: int, cols: int, cell: float):
    """Ray directions [B, W] and the first chunk of wall casting for all B x W column rays."""
    dx, dy = ray_directions(pose, u)
    base = (scene_idx * ((rows + 2) * (cols + 2)))[:, None]
    s, x_face, front, limit = cast_walls(pose[:, 0:1], pose[:, 1:2], dx, dy, base, solid, look, 0, n,
                                         rows, cols, cell)
    return dx, dy, s, x_face, front, s > limit


def _per_layer(t: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """Per-object values t [B, K] picked for each layer and column by k [B, M, W]."""
    b, m, w = k.shape
    return t.gather(1, k.reshape(b, m * w)).view(b, m, w)


def _intersect(cx, cy, hx, hy, cyl, dx, dy, ivx, ivy, a, inv_a):
    """Ray parameters where rays (dx, dy) from the origin enter and leave objects centred at (cx, cy).

    Boxes are axis-aligned with half extents (hx, hy) (slab test); cylinders have radius hx
    (quadratic). Returns (s_in, s_out, x_face): s_out < s_in for a miss; x_face is whether a box
    is entered through one of its x-facing sides. Everything broadcasts.
    """
    ax0, ax1 = (cx - hx) * ivx, (cx + hx) * ivx
    ay0, ay1 = (cy - hy) * ivy, (cy + hy) * ivy
    tx_in, ty_in = torch.minimum(ax0, ax1), torch.minimum(ay0, ay1)
    box_in = torch.maximum(tx_in, ty_in)
    box_out = torch.minimum(torch.maximum(ax0, ax1), torch.maximum(ay0, ay1))
    pd = cx * dx + cy * dy
    disc = pd * pd - (cx * cx + cy * cy - hx * hx) * a
    root = disc.clamp(min=0).sqrt()
    s_in = torch.where(cyl, (pd - root) * inv_a, box_in)
    s_out = torch.where(cyl, torch.where(disc > 0, (pd + root) * inv_a, -INF), box_out)
    return s_in, s_out, tx_in >= ty_in


def nearest(s: torch.Tensor, m: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices [B, m, W] of the m smallest finite s [B, K, W] (ray parameters >= 0, inf for a
    miss) along K, nearest first, and whether each exists.

    Each (s, k) is packed into one int32 (s in millimetres above, the index k in the low bits), so
    each layer is one plain min-reduction over K; s ties within 1 mm are ordered by index.
    """
    n = s.shape[1]
    bits = max(1, (n - 1).bit_length())
    big = 2**31 - 1
    limit = float((big >> bits) - 1)  # ray parameters beyond this many mm (> 2 km for K <= 1024) saturate
    k = torch.arange(n, device=s.device, dtype=torch.int32)[None, :, None]
    q = (s * 1000.0).clamp(0, limit).to(torch.int32)
    packed = torch.where(s < INF, (q << bits) | k, big)
    out = []
    prev = None
    for _ in range(m):
        cur = packed if prev is None else torch.where(packed > prev[:, None, :], packed, big)
        prev = cur.amin(dim=1)
        out.append(prev)
    best = torch.stack(out, 1)
    live = best < big
    return torch.where(live, best & ((1 << bits) - 1), 0).to(torch.int64), live


def _camera_rays(pose: torch.Tensor, scene_idx: torch.Tensor, dx: torch.Tensor, dy: torch.Tensor,
                 obj_center: torch.Tensor):
    """Objects relative to the camera ([B, K]) and per-column ray terms ([B, 1, W])."""
    c = obj_center[scene_idx]
    cx, cy = c[..., 0] - pose[:, 0:1], c[..., 1] - pose[:, 1:2]
    dxk, dyk = dx[:, None, :], dy[:, None, :]
    a = dxk * dxk + dyk * dyk
    return cx, cy, dxk, dyk, a, 1.0 / a, 1.0 / _safe(dxk), 1.0 / _safe(dyk)


def object_keys(pose: torch.Tensor, scene_idx: torch.Tensor, dx: torch.Tensor, dy: torch.Tensor,
                s_wall: torch.Tensor, obj_center: torch.Tensor, obj_half: torch.Tensor, obj_cyl: torch.Tensor,
                obj_valid: torch.Tensor) -> torch.Tensor:
    """Ray parameter [B, K, W] where each column ray enters each object in front of the wall, inf
    where it misses (a graph of its own, so that only this float key is stored)."""
    cx, cy, dxk, dyk, a, inv_a, ivx, ivy = _camera_rays(pose, scene_idx, dx, dy, obj_center)
    hf = obj_half[scene_idx]
    s_in, s_out, _ = _intersect(cx[..., None], cy[..., None], hf[..., 0, None], hf[..., 1, None],
                                obj_cyl[scene_idx][..., None], dxk, dyk, ivx, ivy, a, inv_a)
    hit = obj_valid[scene_idx][..., None] & (s_out > s_in) & (s_in > 0) & (s_in < s_wall[:, None, :])
    return torch.where(hit, s_in, INF)


def column_tables(pose: torch.Tensor, scene_idx: torch.Tensor, dx: torch.Tensor, dy: torch.Tensor,
                  s_wall: torch.Tensor, x_face: torch.Tensor, front: torch.Tensor, key: torch.Tensor,
                  wall_height: torch.Tensor, obj_center: torch.Tensor, obj_half: torch.Tensor,
                  obj_z: torch.Tensor, obj_cyl: torch.Tensor, obj_rgb: torch.Tensor,
                  obj_sem: torch.Tensor, obj_top: torch.Tensor, obj_bottom: torch.Tensor,
                  wall_colours: torch.Tensor, cam_h: float, wainscot_z: float, m: int):
    """Per-column wall band and colours [B, W], and the m nearest object layers per column [B, m, W]."""
    s_wall = s_wall.clamp(min=1e-6)
    # ---- wall: image band, packed colours (upper / lower band, by face) of the room in front
    front = front.to(torch.int64)
    wall_main = torch.where(x_face, wall_colours[0][front], wall_colours[1][front])
    wall_low = torch.where(x_face, wall_colours[2][front], wall_colours[3][front])
    whh = (wall_height[scene_idx] - cam_h)[:, None]  # [B, 1]
    inv_s = 1.0 / s_wall
    band_lo = -cam_h * inv_s
    band_hi = whh * inv_s
    wain_v = (wainscot_z - cam_h) * inv_s
    # ---- objects: the m nearest per column, intersected again for exit, face and lighting
    k, live = nearest(key, m)  # [B, M, W]
    cx, cy, dxk, dyk, a, inv_a, ivx, ivy = _camera_rays(pose, scene_idx, dx, dy, obj_center)
    hf = obj_half[scene_idx]
    lcx, lcy = _per_layer(cx, k), _per_layer(cy, k)
    lhx, lhy = _per_layer(hf[..., 0], k), _per_layer(hf[..., 1], k)
    lcyl = _per_layer(obj_cyl[scene_idx], k)
    l_in, l_out, lxf = _intersect(lcx, lcy, lhx, lhy, lcyl, dxk, dyk, ivx, ivy, a, inv_a)
    l_in = torch.where(live, l_in, 1e6)
    nx = torch.where(lcyl, (l_in * dxk - lcx) / lhx, torch.where(lxf, -torch.sign(dxk), 0.0))
    ny = torch.where(lcyl, (l_in * dyk - lcy) / lhx, torch.where(lxf, 0.0, -torch.sign(dyk)))
    # a fixed world light plus a view-facing term, so cylinders look round and box faces differ
    facing = (-(nx * dxk + ny * dyk) * inv_a.sqrt()).clamp(min=0)
    lit = 0.55 + 0.15 * (nx * LIGHT[0] + ny * LIGHT[1]) + 0.3 * facing
    rgb = obj_rgb[scene_idx]  # [B, K, 3]
    col_side = pack3(*(_per_layer(rgb[..., ch], k) * lit for ch in range(3)))
    col_top = _per_layer(obj_top[scene_idx], k)
    col_bot = _per_layer(obj_bottom[scene_idx], k)
    za = _per_layer(obj_z[scene_idx][..., 0], k) - cam_h
    zb = _per_layer(obj_z[scene_idx][..., 1], k) - cam_h
    inv_in = 1.0 / l_in
    inv_out = 1.0 / l_out.clamp(min=1e-6)
    v_lo = torch.where(live, torch.where(za > 0, za * inv_out, za * inv_in), INF)
    v_hi = torch.where(live, torch.where(zb > 0, zb * inv_in, zb * inv_out), -INF)
    sem = _per_layer(obj_sem[scene_idx], k)
    inst = k.to(torch.int32)
    return (band_lo, band_hi, wain_v, s_wall, wall_main, wall_low, whh,
            v_lo, v_hi, za * inv_in, zb * inv_in, l_in, za, zb, col_side, col_top, col_bot, sem, inst)


def shade_pixels(v: torch.Tensor, inv_v: torch.Tensor, s_floor: torch.Tensor, pose: torch.Tensor,
                 scene_idx: torch.Tensor, dx: torch.Tensor, dy: torch.Tensor, columns: tuple,
                 floor_word: torch.Tensor, rows: int, cols: int, cell: float, ceiling: int, max_depth: float, m: int,
                 sem_wall: int, sem_floor: int, sem_ceiling: int, with_ids: bool, out: tuple | None = None):
    """Per-pixel colour (packed int32), depth and, if `with_ids`, semantic and instance ids [B, H, W].

    With `out` (tensors of those shapes and dtypes), the results are written into it and it is returned.
    """
    band_lo, band_hi, wain_v, s_wall, wall_main, wall_low, whh = columns[:7]
    v_lo, v_hi, side_lo, side_hi, l_in, za, zb, col_side, col_top, col_bot, sem_l, inst_l = columns[7:]
    vv = v[None, :, None]
    iv = inv_v[None, :, None]
    bl, bh = band_lo[:, None, :], band_hi[:, None, :]
    is_floor = vv < bl
    is_ceil = vv > bh
    # floor point and its room look (checker tiles, planks or plain)
    sf = s_floor[None, :, None]
    fx = pose[:, 0, None, None] + sf * dx[:, None, :]
    fy = pose[:, 1, None, None] + sf * dy[:, None, :]
    ci = torch.floor(fy / cell).clamp(-1, rows).to(torch.int32) + 1
    cj = torch.floor(fx / cell).clamp(-1, cols).to(torch.int32) + 1
    base = (scene_idx.to(torch.int32) * ((rows + 2) * (cols + 2)))[:, None, None]
    word = floor_word[(base + ci * (cols + 2) + cj).to(torch.int64)]  # colour | pattern << 24
    pat = word >> 24
    col_a = (word & 0xFFFFFF) | ALPHA
    checker = (torch.floor(fx * 2.0) + torch.floor(fy * 2.0)).to(torch.int32) & 1
    planks = torch.floor(fy * 5.0).to(torch.int32) & 1
    alt = torch.where(pat == 1, checker, torch.where(pat == 2, planks, 0)) == 1
    # the alternate tile / plank: each channel darkened by 1/4 (tiles) or 1/8 (planks), no carries
    col_b = col_a - torch.where(pat == 1, (col_a >> 2) & 0x3F3F3F, (col_a >> 3) & 0x1F1F1F)
    floor_col = torch.where(alt, col_b, col_a)
    wall_col = torch.where(vv < wain_v[:, None, :], wall_low[:, None, :], wall_main[:, None, :])
    depth = torch.where(is_floor, sf, torch.where(is_ceil, whh[:, :, None] * iv, s_wall[:, None, :]))
    col = torch.where(is_floor, floor_col, torch.where(is_ceil, ceiling, wall_col))
    if with_ids:
        sem = torch.where(is_floor, sem_floor, torch.where(is_ceil, sem_ceiling, sem_wall)).to(torch.int32)
        inst = torch.full_like(sem, -1)
    below = vv < 0
    for j in range(m):
        lo, hi = v_lo[:, j, None, :], v_hi[:, j, None, :]
        side = (vv >= side_lo[:, j, None, :]) & (vv <= side_hi[:, j, None, :])
        cap = torch.where(below, zb[:, j, None, :], za[:, j, None, :]) * iv
        d = torch.where(side, l_in[:, j, None, :], cap)
        take = (vv >= lo) & (vv <= hi) & (d < depth)
        depth = torch.where(take, d, depth)
        face = torch.where(side, col_side[:, j, None, :],
                           torch.where(below, col_top[:, j, None, :], col_bot[:, j, None, :]))
        col = torch.where(take, face, col)
        if with_ids:
            sem = torch.where(take, sem_l[:, j, None, :], sem)
            inst = torch.where(take, inst_l[:, j, None, :], inst)
    depth = depth.clamp(max=max_depth)
    res = (col, depth, sem, inst) if with_ids else (col, depth)
    if out is None:
        return res
    for i in range(len(res)):
        out[i].copy_(res[i])
    return out
