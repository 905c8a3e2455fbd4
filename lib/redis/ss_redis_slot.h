/* ss_redis_slot.h - the Redis Cluster hash slot of a key (internal).
 *
 * slot = CRC16(key) mod 16384, CRC16 being CRC-16/XMODEM (polynomial 0x1021,
 * initial value 0, no reflection: "123456789" gives 0x31C3), as the Redis
 * Cluster specification defines it. When the key holds a '{' followed later
 * by a '}' with at least one byte between them, only the bytes between the
 * first '{' and the first '}' after it are hashed (the hash tag): keys with the
 * same tag share a slot, hence a node, and can be updated together. An empty
 * tag "{}" counts as none: the whole key is hashed. */
#ifndef SS_REDIS_SLOT_H
#define SS_REDIS_SLOT_H

#include <stddef.h>

#define SS_REDIS_SLOTS 16384

/* CRC-16/XMODEM of buf[0..len). */
unsigned ss_redis_crc16(const char *buf, size_t len);

/* The slot of key[0..len), 0..16383, honouring its hash tag. */
unsigned ss_redis_slot(const char *key, size_t len);

#endif
