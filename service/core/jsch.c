#include "adsmith/jsch.h"
