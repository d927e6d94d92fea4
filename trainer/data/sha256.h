// Moved to common/sha256.h (the scheduler and CLI need it without the data module).
#pragma once
#include "common/sha256.h"
