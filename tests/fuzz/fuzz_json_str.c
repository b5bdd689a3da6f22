/* libFuzzer target: any bytes written with buf_json_str() must come out as one
 * valid JSON string, whatever their encoding. */
#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdlib.h>

#include "adsmith/buf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *mem = malloc(size * 6 + 3);
    struct buf b;
    cJSON *j;

    buf_init(&b, mem, size * 6 + 3);
    buf_json_str(&b, (const char *)data, size);
    if (b.overflow || (j = cJSON_Parse(mem)) == NULL || !cJSON_IsString(j))
        abort();
    cJSON_Delete(j);
    free(mem);
    return 0;
}
