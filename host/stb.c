/* The stb_image and stb_image_write implementations (Debian's libstb-dev ships the headers). */
#define STB_IMAGE_IMPLEMENTATION
#define STB_IMAGE_WRITE_IMPLEMENTATION
#define STBI_FAILURE_USERMSG
/* Zeroed memory for the decoders' buffers: a corrupt JPEG makes stb_image read parts of its buffers it never
 * wrote, and two loads of one file then gave different pixels (the image fuzz test found it). Zeroed, a
 * damaged file decodes the same way every time. (Only fresh blocks: realloc grows PNG's compressed-data
 * buffer, up to a chunk length the file declares, which must stay untouched until the read fails.) */
#include <stdlib.h>
#define STBI_MALLOC(size) calloc(1, (size) ? (size) : 1)
#define STBI_REALLOC(p, size) realloc(p, size)
#define STBI_FREE(p) free(p)
/* Zeroed local arrays as well: a palette PNG whose pixels name entries past its PLTE chunk read them from
 * stb's uninitialized palette[1024] on the stack, and the image came back with whatever bytes the stack held
 * there (text of earlier calls). Zeroed, those pixels are black, as other readers show them. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("-ftrivial-auto-var-init=zero")
#endif
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#include <stb/stb_image.h>
#include <stb/stb_image_write.h>
#pragma GCC diagnostic pop
