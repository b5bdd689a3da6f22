#include "adsmith/tz.h"
