/* ss_redis_slot.c - CRC-16/XMODEM and the Redis Cluster key slot. */
#include <string.h>

#include "ss_redis_slot.h"

unsigned ss_redis_crc16(const char *buf, size_t len)
{
    unsigned crc = 0;
    size_t i;
    int bit;

    for (i = 0; i < len; i++) {
        crc ^= (unsigned)(unsigned char)buf[i] << 8;
        for (bit = 0; bit < 8; bit++) {
            crc = crc & 0x8000 ? (crc << 1) ^ 0x1021 : crc << 1;
        }
        crc &= 0xffff;
    }
    return crc;
}

unsigned ss_redis_slot(const char *key, size_t len)
{
    const char *open = memchr(key, '{', len);

    if (open) {
        size_t start = (size_t)(open - key) + 1;
        const char *close = memchr(open + 1, '}', len - start);

        if (close && close > open + 1) {
            return ss_redis_crc16(open + 1, (size_t)(close - open - 1)) & (SS_REDIS_SLOTS - 1);
        }
    }
    return ss_redis_crc16(key, len) & (SS_REDIS_SLOTS - 1);
}
