#include <zstd.h>

// zstd exposes these as macros, which Swift cannot import.
static inline unsigned long long tessera_zstd_contentsize_unknown(void) { return ZSTD_CONTENTSIZE_UNKNOWN; }
static inline unsigned long long tessera_zstd_contentsize_error(void) { return ZSTD_CONTENTSIZE_ERROR; }
