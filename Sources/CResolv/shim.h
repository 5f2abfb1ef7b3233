#ifndef CRESOLV_SHIM_H
#define CRESOLV_SHIM_H
/*
 * glibc's stub resolver for Swift. res_ninit/res_nclose are macros over
 * __res_ninit/__res_nclose, so Swift calls the latter. res_nmkquery, res_nsend
 * and dn_expand live in libc; ns_initparse/ns_parserr/ns_get16 only in
 * libresolv, hence `link "resolv"` in the module map.
 */
#include <sys/types.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <resolv.h>
#endif
