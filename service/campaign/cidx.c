#include "adsmith/cidx.h"
#include <stddef.h>
size_t cidx_placeholder_(void);
size_t cidx_placeholder_(void) { return 0; }
