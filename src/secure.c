/*  =========================================================================
    secure.c - keys for CURVE

    A deployment's keys live in one directory, made by tr_keygen (or
    `troupe keygen`): troupe.key_secret (mode 0600) and troupe.key, the
    deployment's key pair in czmq's zcert format, and allowed/, the
    public keys of the peers that may connect (the deployment's own to
    start with). The directory is mode 0700.
    =========================================================================
*/
#include "troupe_private.h"
#include <czmq.h>
#include <sys/stat.h>

int
tr_keygen (const char *dir)
{
    if (!dir || !*dir)
        return TR_EINVAL;
    char path [4096];
    if (snprintf (path, sizeof path, "%s/allowed", dir) >= (int) sizeof path)
        return TR_EINVAL;
    if ((mkdir (dir, 0700) && errno != EEXIST) || chmod (dir, 0700)
    ||  (mkdir (path, 0700) && errno != EEXIST))
        return TR_ESYS;
    snprintf (path, sizeof path, "%s/troupe.key_secret", dir);
    if (access (path, F_OK) == 0)
        return TR_EINVAL;               //  never overwrite a deployment's keys
    zcert_t *cert = zcert_new ();
    if (!cert)
        return TR_ENOMEM;
    zcert_set_meta (cert, "name", "troupe");
    snprintf (path, sizeof path, "%s/troupe.key", dir);
    int rc = zcert_save (cert, path);
    if (rc == 0) {
        snprintf (path, sizeof path, "%s/allowed/troupe.key", dir);
        rc = zcert_save_public (cert, path);
    }
    zcert_destroy (&cert);
    if (rc)
        return TR_ESYS;
    snprintf (path, sizeof path, "%s/troupe.key_secret", dir);
    return chmod (path, 0600)? TR_ESYS: 0;
}
