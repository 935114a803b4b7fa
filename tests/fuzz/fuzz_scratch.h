/* fuzz_scratch.h - what the fuzz targets that read files share: a scratch
 * folder of their own, files written into it, and a run inside it. */
#ifndef FUZZ_SCRATCH_H
#define FUZZ_SCRATCH_H

#include <stddef.h>

/* A folder made for this process (mkdtemp), the same on every call. */
const char *fuzz_scratch_dir(void);
/* PATH now holds exactly the N bytes at DATA. */
void fuzz_write(const char *path, const void *data, size_t n);
/* The same, once: a file the runs share. */
void fuzz_write_once(const char *path, const void *data, size_t n);
/* Run in DIR with standard input at its end (0), then back. */
int fuzz_enter(const char *dir);
void fuzz_leave(void);
/* Remove every file in DIR but those named in KEEP (NULL-terminated). */
void fuzz_clean(const char *dir, const char *const *keep);

#endif
