"""Painting one synthetic street scene (image and Cityscapes train-id label):
the drawing half of ``make_demo_data.py``.

One-point-perspective streets: sky, buildings with windows, trees and hedges,
sidewalks and a road narrowing to a vanishing point, cars and people sized by
their distance. Regions are textured and noisy and class colours overlap, so a
model must use shape and context. Object sizes suit a model predicting at
output stride 8 on 256x128 images (benchmarks/demo_resolution_bound.py).
"""

import cv2
import numpy as np

ROAD, SIDEWALK, BUILDING, VEGETATION, SKY, PERSON, CAR = 0, 1, 2, 8, 10, 11, 13
CLASSES = (ROAD, SIDEWALK, BUILDING, VEGETATION, SKY, PERSON, CAR)

_SKIES = (((60, 110, 190), (165, 195, 230)),  # clear
          ((135, 140, 150), (195, 195, 200)),  # overcast, building-grey
          ((150, 160, 175), (215, 210, 200)))  # hazy
_FACADES = ((95, 95, 100), (140, 140, 140), (185, 180, 175), (190, 170, 140),
            (140, 75, 60), (110, 90, 70), (150, 160, 175))
_CARS = ((215, 215, 215), (165, 170, 175), (105, 105, 110), (35, 35, 40),
         (170, 30, 35), (40, 60, 140), (50, 85, 60), (180, 165, 130))


class _Canvas:
    """An RGB float image and its label map, painted shape by shape."""

    def __init__(self, height, width, rng):
        self.h, self.w, self.rng = height, width, rng
        self.img = np.zeros((height, width, 3), np.float32)
        self.label = np.zeros((height, width), np.uint8)
        self.unit = height / 128.0  # sizes are tuned at 128 px high

    def jitter(self, color, sigma=12.0):
        return np.clip(np.asarray(color, np.float32) +
                       self.rng.normal(0, sigma, 3), 0, 255)

    def mask(self, polys=(), ellipses=(), rects=()):
        """A uint8 mask of polygons, ellipses (cx, cy, rx, ry) and rects."""
        m = np.zeros((self.h, self.w), np.uint8)
        for p in polys:  # one call per polygon: fillPoly XORs overlaps
            cv2.fillPoly(m, [np.round(np.asarray(p)).astype(np.int32)], 1)
        for cx, cy, rx, ry in ellipses:
            cv2.ellipse(m, (int(round(cx)), int(round(cy))),
                        (max(int(round(rx)), 1), max(int(round(ry)), 1)), 0, 0,
                        360, 1, -1)
        for x0, y0, x1, y1 in rects:
            cv2.rectangle(m, (int(round(x0)), int(round(y0))),
                          (int(round(x1)) - 1, int(round(y1)) - 1), 1, -1)
        return m

    def paint(self, mask, cls, color, grain=5.0, blotch=10.0, scale=8):
        """Fill ``mask`` with ``color`` (RGB, or a full-frame HxWx3 / Hx1x3
        array) plus blotchy low-frequency and fine grain noise."""
        x, y, bw, bh = cv2.boundingRect(mask)
        if bw == 0 or bh == 0:
            return
        sel = mask[y:y + bh, x:x + bw] > 0
        color = np.asarray(color, np.float32)
        if color.ndim == 3:
            color = color[y:y + bh, x:x + bw] if color.shape[1] > 1 else \
                color[y:y + bh]
        grid = (max(bh // scale, 1) + 2, max(bw // scale, 1) + 2)
        low = (self.rng.normal(0, blotch, grid + (1, )) +
               self.rng.normal(0, blotch * 0.3, grid + (3, ))).astype(np.float32)
        low = cv2.resize(low, (bw, bh), interpolation=cv2.INTER_LINEAR)
        fine = self.rng.normal(0, grain, (bh, bw, 1)).astype(np.float32)
        tex = np.broadcast_to(color + low + fine, (bh, bw, 3))
        self.img[y:y + bh, x:x + bw][sel] = tex[sel]
        self.label[y:y + bh, x:x + bw][sel] = cls


def _sky(c, horizon):
    top, bottom = _SKIES[c.rng.integers(len(_SKIES))]
    t = np.linspace(0, 1, c.h, dtype=np.float32)[:, None, None]
    t = np.clip(t * c.h / max(horizon, 1), 0, 1)
    grad = c.jitter(top) * (1 - t) + c.jitter(bottom) * t
    c.paint(np.ones((c.h, c.w), np.uint8), SKY, grad, grain=2, blotch=9,
            scale=24)


def _buildings(c, horizon):
    x = -int(c.rng.integers(0, c.w // 8 + 1))
    while x < c.w:
        bw = int(c.w * c.rng.uniform(0.2, 0.45))
        if c.rng.random() < 0.15:  # a gap: sky down to the horizon
            x += bw // 2
            continue
        top = horizon - c.h * c.rng.uniform(0.2, 0.55)
        facade = c.jitter(_FACADES[c.rng.integers(len(_FACADES))])
        c.paint(c.mask(rects=[(x, top, x + bw, horizon)]), BUILDING, facade,
                grain=4, blotch=9, scale=6)
        _windows(c, x, top, bw, horizon)
        x += bw


def _windows(c, x, top, bw, horizon):
    """A grid of windows: dark, lit, or reflecting a sky colour."""
    floor = c.unit * c.rng.uniform(7, 12)
    col = floor * c.rng.uniform(0.8, 1.4)
    rects = []
    for y in np.arange(top + floor * 0.4, horizon - floor, floor):
        for wx in np.arange(x + col * 0.3, x + bw - col * 0.6, col):
            rects.append((wx, y, wx + col * 0.55, y + floor * 0.6))
    if not rects:
        return
    kind = c.rng.integers(3)
    color = ((45, 50, 60), (200, 190, 140), (150, 180, 215))[kind]
    c.paint(c.mask(rects=rects), BUILDING, c.jitter(color, 15), grain=6,
            blotch=12, scale=3)


def _ground(c, horizon, vx):
    """Sidewalk everywhere below the horizon, then the road wedge and its
    dashed centre line. Returns ``road_x(y) -> (left, right)``."""
    c.paint(c.mask(rects=[(0, horizon, c.w, c.h)]), SIDEWALK,
            c.jitter(((150, 150, 150), (165, 120, 105), (170, 160, 135))[
                c.rng.integers(3)], 15), grain=8, blotch=10, scale=4)
    top_half = c.w * c.rng.uniform(0.02, 0.08)
    bottom = (c.w * c.rng.uniform(-0.35, 0.15), c.w * c.rng.uniform(0.85, 1.35))

    def road_x(y):
        s = (y - horizon) / max(c.h - horizon, 1)
        return (vx - top_half + s * (bottom[0] - vx + top_half),
                vx + top_half + s * (bottom[1] - vx - top_half))

    poly = [(vx - top_half, horizon), (vx + top_half, horizon),
            (bottom[1], c.h), (bottom[0], c.h)]
    gray = c.rng.uniform(55, 120)
    c.paint(c.mask(polys=[poly]), ROAD, c.jitter((gray, gray, gray + 4), 6),
            grain=9, blotch=9, scale=5)
    dashes = []
    for s0 in np.arange(0.05, 1.0, 0.16):
        ya, yb = horizon + s0 * (c.h - horizon), horizon + (s0 + 0.07) * (
            c.h - horizon)
        (la, ra), (lb, rb) = road_x(ya), road_x(yb)
        ma, mb = (la + ra) / 2, (lb + rb) / 2
        wa, wb = (ra - la) * 0.012, (rb - lb) * 0.012
        dashes.append([(ma - wa, ya), (ma + wa, ya), (mb + wb, yb),
                       (mb - wb, yb)])
    c.paint(c.mask(polys=dashes), ROAD, c.jitter((215, 215, 205), 10),
            grain=8, blotch=6)
    return road_x


def _tree(c, x, y, size):
    c.paint(c.mask(rects=[(x - size * 0.08, y - size * 0.7, x + size * 0.08,
                           y)]), VEGETATION, c.jitter((85, 65, 45)), grain=6)
    blobs = [(x + c.rng.normal(0, size * 0.15),
              y - size * c.rng.uniform(0.7, 1.0), size * c.rng.uniform(0.2, 0.35),
              size * c.rng.uniform(0.2, 0.35))
             for _ in range(c.rng.integers(3, 7))]
    green = (c.rng.uniform(40, 110), c.rng.uniform(65, 135),
             c.rng.uniform(20, 70))
    c.paint(c.mask(ellipses=blobs), VEGETATION, green, grain=16, blotch=22,
            scale=3)


def _hedge(c, horizon):
    x0 = c.rng.uniform(-0.1, 0.6) * c.w
    x1 = x0 + c.rng.uniform(0.2, 0.6) * c.w
    height = c.unit * c.rng.uniform(7, 12)
    bumps = [(x, horizon - height * 0.6, height * 0.7, height * 0.6)
             for x in np.arange(x0, x1, max(height * 0.8, 1))]
    m = c.mask(rects=[(x0, horizon - height * 0.6, x1, horizon + height * 0.3)],
               ellipses=bumps)
    c.paint(m, VEGETATION, c.jitter((60, 90, 45), 15), grain=14, blotch=18,
            scale=3)


def _shape(xc, yb, width, height, *uv):
    """Points ``(u, v)`` of an object as image points: ``u`` across it from
    -0.5 to 0.5 of ``width``, ``v`` up from its base ``yb`` in ``height``s."""
    return [(xc + u * width, yb - v * height) for u, v in uv]


def _car(c, xc, yb, width):
    """A car seen from behind: body, cabin, rear window, wheels, lights."""
    def shape(*uv):
        return _shape(xc, yb, width, width * 0.6, *uv)

    body = shape((-.5, .15), (-.5, .55), (-.45, .62), (.45, .62), (.5, .55),
                 (.5, .15))
    cabin = shape((-.38, .6), (-.26, 1), (.26, 1), (.38, .6))
    c.paint(c.mask(polys=[body, cabin]), CAR,
            c.jitter(_CARS[c.rng.integers(len(_CARS))], 10), grain=4, blotch=7)
    glass = shape((-.33, .63), (-.23, .93), (.23, .93), (.33, .63))
    c.paint(c.mask(polys=[glass]), CAR, c.jitter((70, 85, 105), 25), grain=5)
    wheels = [(xc + u * width, yb - 0.072 * width, 0.11 * width, 0.072 * width)
              for u in (-0.3, 0.3)]
    c.paint(c.mask(ellipses=wheels), CAR, (25, 25, 25), grain=4)
    lights = [shape((u, .42), (u, .5), (u + .1, .5), (u + .1, .42))
              for u in (-.47, .37)]
    c.paint(c.mask(polys=lights), CAR, (190, 40, 35), grain=6)


def _person(c, xc, yb, h):
    """A walking person: legs, torso, head; clothes of any colour."""
    def shape(*uv):
        return _shape(xc, yb, h * 0.34, h, *uv)

    st = c.rng.uniform(0, 0.35)  # stride, in body widths
    legs = [shape((-.35, .47), (-.02, .47), (-st, 0), (-st - .3, 0)),
            shape((.02, .47), (.35, .47), (st + .3, 0), (st, 0))]
    c.paint(c.mask(polys=legs), PERSON, c.rng.uniform(20, 160, 3), grain=5)
    torso = shape((-.5, .82), (.5, .82), (.5, .45), (-.5, .45))
    c.paint(c.mask(polys=[torso]), PERSON, c.rng.uniform(20, 220, 3), grain=6,
            blotch=10)
    c.paint(c.mask(ellipses=[(xc, yb - 0.9 * h, h * 0.075, h * 0.09)]), PERSON,
            c.jitter((190, 150, 120), 25), grain=5)


def _objects(c, horizon, road_x):
    """Trees, people and cars as ``(base_y, draw)``, to draw far to near."""
    depth = c.h - horizon
    items = []
    for _ in range(c.rng.integers(0, 4)):
        y = horizon + depth * c.rng.uniform(0.03, 0.5)
        left, right = road_x(y)
        x = (c.rng.uniform(-0.05, 0.05) * c.w + (left if c.rng.random() < 0.5
                                                  else right))
        size = c.h * (0.25 + 0.9 * (y - horizon) / depth)
        items.append((y, lambda x=x, y=y, s=size: _tree(c, x, y, s)))
    for _ in range(c.rng.integers(1, 4)):  # people: close enough to learn
        y = horizon + depth * c.rng.uniform(0.5, 1.0)
        left, right = road_x(y)
        side = c.rng.random()
        x = (c.rng.uniform(0, max(left, 1)) if side < 0.4 else
             c.rng.uniform(min(right, c.w - 1), c.w) if side < 0.8 else
             c.rng.uniform(left, right))
        height = c.h * 0.75 * (y - horizon) / depth + 12 * c.unit
        items.append((y, lambda x=x, y=y, s=height: _person(c, x, y, s)))
    for _ in range(c.rng.integers(1, 4)):
        y = horizon + depth * c.rng.uniform(0.3, 0.95)
        left, right = road_x(y)
        width = c.w * 0.38 * (y - horizon) / depth + 4 * c.unit
        x = c.rng.uniform(left + width * 0.3, max(right - width * 0.3,
                                                  left + width * 0.3 + 1))
        items.append((y, lambda x=x, y=y, s=width: _car(c, x, y, s)))
    return sorted(items, key=lambda item: item[0])


def _finish(c, horizon):
    """Shadows on the ground, a light gradient, noise and a slight blur."""
    for _ in range(c.rng.integers(0, 3)):
        xs = np.sort(c.rng.uniform(-0.2, 1.2, 2) * c.w)
        y0 = horizon + (c.h - horizon) * c.rng.uniform(0, 0.6)
        m = c.mask(polys=[[(xs[0], y0), (xs[1], y0), (xs[1] + c.w * 0.2, c.h),
                           (xs[0] + c.w * 0.2, c.h)]]) > 0
        c.img[m] *= c.rng.uniform(0.55, 0.8)
    yy, xx = np.mgrid[0:c.h, 0:c.w].astype(np.float32)
    a, b = c.rng.uniform(-0.25, 0.25, 2)
    light = 1 + a * (xx / c.w - 0.5) + b * (yy / c.h - 0.5)
    img = c.img * light[:, :, None] + c.rng.normal(0, 2.5, c.img.shape)
    img = cv2.GaussianBlur(img.astype(np.float32), (3, 3), 0.6)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def draw_scene(rng, height, width):
    """One random street scene: (RGB uint8 HxWx3 image, uint8 HxW label)."""
    c = _Canvas(height, width, rng)
    horizon = int(height * rng.uniform(0.38, 0.55))
    _sky(c, horizon)
    _buildings(c, horizon)
    road_x = _ground(c, horizon, width * rng.uniform(0.3, 0.7))
    if rng.random() < 0.6:
        _hedge(c, horizon)
    for _, draw in _objects(c, horizon, road_x):
        draw()
    return _finish(c, horizon), c.label
