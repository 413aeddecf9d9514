// Resolved through `pkg-config --cflags openblas`, which puts the openblas-pthread
// folder first on the include path; the plain /usr/include/cblas.h is an
// alternatives link that may belong to another BLAS.
#include <cblas.h>
