#include "adsmith/campaign.h"
