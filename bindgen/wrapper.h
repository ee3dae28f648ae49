/* bindgen's only input: the GnuTLS headers tlsresume-gnutls uses. */
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <gnutls/ocsp.h>
#include <gnutls/dane.h>
