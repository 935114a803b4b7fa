/* filters.c - each convolution's kernels as a picture (filters.h).
 *
 * A conv2d (or depthwise) kernel [kh, kw, cin, cout] is a grid of tiles,
 * a row per input channel and a column per output channel, each weight a
 * square: white at zero, red for positive and blue for negative weights,
 * as strong as the weight against its filter's largest magnitude (so the
 * course's edge filters read as they are written, and a learned filter's
 * pattern shows whatever the size of the others).  The first layer of a
 * colour model (three input channels) draws each filter as one colour
 * tile instead.  A conv3d kernel's tiles are its depth's frames side by
 * side; a conv1d kernel is a line plot per output channel, a line per
 * input channel.  libpng writes the files. */
#include "filters.h"

#include <errno.h>
#include <math.h>
#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "layers/layers.h"
#include "util.h"

enum { GAP = 4, TILE = 96, MAX_SIDE = 4096, PANEL_W = 160, PANEL_H = 96 };

typedef struct {
    int w, h;
    unsigned char *rgb;
} Canvas;

static Canvas canvas_new(int w, int h)
{
    Canvas c = {w, h, xmalloc((size_t)w * (size_t)h * 3)};
    memset(c.rgb, 235, (size_t)w * (size_t)h * 3); /* a light grey between the tiles */
    return c;
}

static void canvas_fill(Canvas *c, int x, int y, int w, int h, const unsigned char rgb[3])
{
    for (int j = y; j < y + h && j < c->h; j++)
        for (int i = x; i < x + w && i < c->w; i++)
            memcpy(c->rgb + ((size_t)j * (size_t)c->w + (size_t)i) * 3, rgb, 3);
}

/* A straight line, Bresenham's way. */
static void canvas_line(Canvas *c, int x0, int y0, int x1, int y1, const unsigned char rgb[3])
{
    int dx = abs(x1 - x0), dy = -abs(y1 - y0), sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1;
    for (int err = dx + dy;;) {
        canvas_fill(c, x0, y0, 2, 2, rgb);
        if (x0 == x1 && y0 == y1)
            return;
        int e2 = 2 * err;
        if (e2 >= dy)
            err += dy, x0 += sx;
        if (e2 <= dx)
            err += dx, y0 += sy;
    }
}

/* The diverging scale: white at 0, red at +scale, blue at -scale. */
static void weight_colour(float v, float scale, unsigned char rgb[3])
{
    float t = fminf(fabsf(v) / scale, 1.0f);
    unsigned char fade = (unsigned char)lrintf(255.0f * (1.0f - t));
    rgb[0] = v > 0 ? 255 : fade;
    rgb[1] = fade;
    rgb[2] = v < 0 ? 255 : fade;
}

static bool write_png(const Canvas *c, const char *path, char *error, size_t size)
{
    FILE *f = fopen(path, "wb");
    if (!f) {
        snprintf(error, size, "cannot write '%s': %s", path, strerror(errno));
        return false;
    }
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    bool ok = png && info;
    if (ok && setjmp(png_jmpbuf(png))) {
        ok = false;
    } else if (ok) {
        png_init_io(png, f);
        png_set_IHDR(png, info, (png_uint_32)c->w, (png_uint_32)c->h, 8, PNG_COLOR_TYPE_RGB,
                     PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
        png_write_info(png, info);
        for (int y = 0; y < c->h; y++)
            png_write_row(png, c->rgb + (size_t)y * (size_t)c->w * 3);
        png_write_end(png, info);
    }
    png_destroy_write_struct(&png, &info);
    if (fclose(f) != 0)
        ok = false;
    if (!ok)
        snprintf(error, size, "cannot write '%s': libpng failed", path);
    return ok;
}

/* A kernel's geometry: taps [d, h, w] (1 where the layer has fewer axes),
 * input and output channels, and weight (tap, ci, co). */
typedef struct {
    int nd;
    int64_t d, h, w, cin, cout;
    const float *values;
} Kernel;

static float kernel_at(const Kernel *k, int64_t z, int64_t y, int64_t x, int64_t ci, int64_t co)
{
    return k->values[(((z * k->h + y) * k->w + x) * k->cin + ci) * k->cout + co];
}

/* Filter CO's largest magnitude (1 for a filter of zeros): each filter is
 * drawn against its own, so a learned filter's pattern shows whatever the
 * other filters' sizes. */
static float filter_scale(const Kernel *k, int64_t co)
{
    float scale = 0;
    for (int64_t j = co; j < k->d * k->h * k->w * k->cin * k->cout; j += k->cout)
        scale = fmaxf(scale, fabsf(k->values[j]));
    return scale > 0 ? scale : 1;
}

/* Pixels per weight: a tile about TILE wide, the picture at most MAX_SIDE. */
static int cell_size(const Kernel *k, int64_t columns)
{
    int64_t across = k->d * k->w;
    int64_t s = TILE / (k->h > across ? k->h : across);
    int64_t fit = (MAX_SIDE / (columns ? columns : 1) - GAP) / (across + k->d);
    s = s < fit ? s : fit;
    return s < 1 ? 1 : (int)s;
}

/* conv2d, depthwise and conv3d: the grid of tiles (frames side by side). */
static Canvas draw_grid(const Kernel *k, bool colour)
{
    int64_t rows = colour ? 1 : k->cin, cols = k->cout;
    int s = cell_size(k, cols);
    int frame_w = (int)k->w * s, tile_w = (int)k->d * frame_w + ((int)k->d - 1) * 2,
        tile_h = (int)k->h * s;
    Canvas c = canvas_new((int)cols * (tile_w + GAP) + GAP, (int)rows * (tile_h + GAP) + GAP);
    for (int64_t co = 0; co < cols; co++) {
        float scale = filter_scale(k, co);
        for (int64_t r = 0; r < rows; r++)
            for (int64_t z = 0; z < k->d; z++)
                for (int64_t y = 0; y < k->h; y++)
                    for (int64_t x = 0; x < k->w; x++) {
                        unsigned char rgb[3];
                        if (colour) /* RGB: the weight's sign and size per channel */
                            for (int ch = 0; ch < 3; ch++)
                                rgb[ch] = (unsigned char)lrintf(
                                    127.5f + 127.5f * kernel_at(k, z, y, x, ch, co) / scale);
                        else
                            weight_colour(kernel_at(k, z, y, x, r, co), scale, rgb);
                        int px =
                            GAP + (int)co * (tile_w + GAP) + (int)z * (frame_w + 2) + (int)x * s;
                        int py = GAP + (int)r * (tile_h + GAP) + (int)y * s;
                        canvas_fill(&c, px, py, s, s, rgb);
                    }
    }
    return c;
}

/* conv1d: a panel per output channel, a line per input channel. */
static Canvas draw_lines(const Kernel *k)
{
    static const unsigned char palette[6][3] = {{31, 119, 180}, {214, 39, 40},   {44, 160, 44},
                                                {255, 127, 14}, {148, 103, 189}, {23, 190, 207}};
    static const unsigned char white[3] = {255, 255, 255}, axis[3] = {160, 160, 160};
    int64_t cols = k->cout < 8 ? k->cout : 8, rows = (k->cout + cols - 1) / cols;
    Canvas c = canvas_new((int)cols * (PANEL_W + GAP) + GAP, (int)rows * (PANEL_H + GAP) + GAP);
    for (int64_t co = 0; co < k->cout; co++) {
        int x0 = GAP + (int)(co % cols) * (PANEL_W + GAP),
            y0 = GAP + (int)(co / cols) * (PANEL_H + GAP);
        int mid = y0 + PANEL_H / 2;
        canvas_fill(&c, x0, y0, PANEL_W, PANEL_H, white);
        canvas_fill(&c, x0, mid, PANEL_W, 1, axis); /* zero */
        float scale = filter_scale(k, co);
        for (int64_t ci = 0; ci < k->cin; ci++) {
            int px = 0, py = 0;
            for (int64_t t = 0; t < k->w; t++) {
                int x = x0 + 8 + (int)(t * (PANEL_W - 16) / (k->w > 1 ? k->w - 1 : 1));
                int y =
                    mid - (int)lrintf(kernel_at(k, 0, 0, t, ci, co) / scale * (PANEL_H / 2 - 6));
                canvas_fill(&c, x - 2, y - 2, 5, 5, palette[ci % 6]);
                if (t > 0)
                    canvas_line(&c, px, py, x, y, palette[ci % 6]);
                px = x, py = y;
            }
        }
    }
    return c;
}

static bool is_convolution(const Layer *l)
{
    return l->nd > 0 && l->nparams > 0 &&
           (strncmp(l->kind->name, "conv", 4) == 0 || strncmp(l->kind->name, "depthwise", 9) == 0);
}

int filters_write(const Model *m, const float *params, const bool *skip, const char *dir,
                  char *error, size_t size)
{
    if (mkdir(dir, 0777) != 0 && errno != EEXIST) {
        snprintf(error, size, "cannot make the directory '%s': %s", dir, strerror(errno));
        return 2;
    }
    int written = 0;
    for (int i = 0; i < m->nlayers; i++) {
        const Layer *l = m->layers[i];
        if (!is_convolution(l))
            continue;
        if (skip[i]) {
            fprintf(stderr,
                    "cnngen: warning: the filters of '%s' are learned: not drawn without "
                    "--weights W.safetensors\n",
                    l->name);
            continue;
        }
        const Param *p = &l->params[0];
        Kernel k = {l->nd, 1, 1, 1, l->cin, p->shape.dim[l->nd + 1], params + p->offset};
        int64_t *axes[3] = {&k.w, NULL, NULL};
        if (l->nd == 2)
            axes[0] = &k.h, axes[1] = &k.w;
        if (l->nd == 3)
            axes[0] = &k.d, axes[1] = &k.h, axes[2] = &k.w;
        for (int a = 0; a < l->nd; a++)
            *axes[a] = p->shape.dim[a];
        /* the first layer of a colour image model: a colour tile per filter */
        bool colour = l->nd >= 2 && l->cin == 3 && l->nsrcs > 0 && l->srcs[0] == 0;
        Canvas c = l->nd == 1 ? draw_lines(&k) : draw_grid(&k, colour);
        size_t n = strlen(dir) + strlen(l->name) + 8;
        char *path = xmalloc(n);
        snprintf(path, n, "%s/%s.png", dir, l->name);
        bool ok = write_png(&c, path, error, size);
        free(path);
        free(c.rgb);
        if (!ok)
            return 2;
        written++;
    }
    if (written == 0) {
        snprintf(error, size, "'%s' has no convolution whose filters can be drawn", m->name);
        return 1;
    }
    return 0;
}
