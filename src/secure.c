/*  =========================================================================
    secure.c - keys for CURVE

    A deployment's keys live in one directory, made by tr_keygen (or
    `troupe keygen`): troupe.key_secret (mode 0600) and troupe.key, the
    deployment's key pair in czmq's zcert format, and allowed/, the
    public keys of the peers that may connect (the deployment's own to
    start with). The directory is mode 0700.

    With keys, the actor's ROUTER is a CURVE server and each DEALER a
    CURVE client, all with the deployment's key pair. libzmq asks a ZAP
    handler in the socket's own context whether a client may connect, and
    accepts everyone when there is none; czmq's zauth lives in czmq's
    context, which troupe's sockets never see. So the handler is ours: a
    ROUTER at inproc://zeromq.zap.01 in troupe's context, bound before any
    CURVE socket exists, one more watcher of the loop, answering at once
    from the allowed keys loaded at start. The secret key stays in its
    file and in this process's memory; it is never logged and never put
    in a child's environment (children are given the directory).
    =========================================================================
*/
#include "troupe_private.h"
#include <czmq.h>
#include <dirent.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/stat.h>
#include <unistd.h>

#define TRI_ZAP_ENDPOINT "inproc://zeromq.zap.01"
#define TRI_ZAP_FRAMES   8      //  after the routing id: "" + 7 (RFC 27, CURVE)

static struct {
    zcert_t *cert;              //  the deployment's key pair, or NULL
    zcertstore_t *allowed;      //  public keys that may connect
    char *dir;
    bool insecure;
    void *zap;                  //  the ZAP handler's ROUTER
    tri_watch_t zap_watch;
    zhashx_t *refused;          //  public keys and hosts refused, logged once
} s_sec;

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

//  --------------------------------------------------------------------------
//  Loading the keys

//  The allowed keys, once: a store in memory, not czmq's disk loader,
//  which would look at the directory again on every handshake.
static int
s_load_allowed (const char *dir)
{
    char path [4096];
    snprintf (path, sizeof path, "%s/allowed", dir);
    DIR *d = opendir (path);
    if (!d) {
        tri_log_error ("TR-CURVE", "cannot read the allowed keys in %s: %s", path,
                       strerror (errno));
        return TR_EINVAL;
    }
    if (!(s_sec.allowed = zcertstore_new (NULL))) {
        closedir (d);
        return TR_ENOMEM;
    }
    struct dirent *entry;
    size_t count = 0;
    while ((entry = readdir (d))) {
        size_t len = strlen (entry->d_name);
        if (entry->d_name [0] == '.' || len < 4 || !streq (entry->d_name + len - 4, ".key"))
            continue;
        char file [4096 + 256];
        snprintf (file, sizeof file, "%s/%s", path, entry->d_name);
        zcert_t *cert = zcert_load (file);
        if (!cert) {
            tri_log_warn ("TR-CURVE", "%s is not a key: ignored", file);
            continue;
        }
        zcertstore_insert (s_sec.allowed, &cert);
        count++;
    }
    closedir (d);
    if (count == 0)
        tri_log_warn ("TR-CURVE", "%s holds no keys: no peer may connect", path);
    return 0;
}

static int
s_load_cert (const char *dir)
{
    char path [4096];
    snprintf (path, sizeof path, "%s/troupe.key_secret", dir);
    //  zcert_load falls back on the public file alone, with a secret key
    //  of zeros: the secret file must be there and hold a key.
    if (access (path, R_OK)) {
        tri_log_error ("TR-CURVE", "cannot read %s: %s (make keys with `troupe keygen DIR`)",
                       path, strerror (errno));
        return TR_EINVAL;
    }
    struct stat st;
    if (stat (path, &st) == 0 && (st.st_mode & 077))
        tri_log_warn ("TR-CURVE", "%s can be read by others than its owner: chmod 600 it",
                      path);
    snprintf (path, sizeof path, "%s/troupe.key", dir);
    s_sec.cert = zcert_load (path);
    static const byte zeros [32] = { 0 };
    if (!s_sec.cert || memcmp (zcert_secret_key (s_sec.cert), zeros, 32) == 0) {
        tri_log_error ("TR-CURVE", "%s/troupe.key_secret and troupe.key are not a key pair "
                       "made by `troupe keygen`", dir);
        zcert_destroy (&s_sec.cert);
        return TR_EINVAL;
    }
    return 0;
}

//  --------------------------------------------------------------------------
//  The ZAP handler (RFC 27): a request is [rid, "", version, request id,
//  domain, address, identity, mechanism, credentials...]; the answer is
//  [rid, "", version, request id, status, text, user id, metadata].

static void
s_zap_reply (zmq_msg_t *rid, zmq_msg_t *request_id, const char *status, const char *text)
{
    zmq_msg_t copy;
    zmq_msg_init (&copy);
    zmq_msg_copy (&copy, rid);
    zmq_msg_send (&copy, s_sec.zap, ZMQ_SNDMORE);
    zmq_send (s_sec.zap, "", 0, ZMQ_SNDMORE);
    zmq_send (s_sec.zap, "1.0", 3, ZMQ_SNDMORE);
    zmq_msg_init (&copy);
    zmq_msg_copy (&copy, request_id);
    zmq_msg_send (&copy, s_sec.zap, ZMQ_SNDMORE);
    zmq_send (s_sec.zap, status, strlen (status), ZMQ_SNDMORE);
    zmq_send (s_sec.zap, text, strlen (text), ZMQ_SNDMORE);
    zmq_send (s_sec.zap, "", 0, ZMQ_SNDMORE);
    zmq_send (s_sec.zap, "", 0, 0);
}

static void
s_zap_request (zmq_msg_t *frames, int n)
{
    //  frames: 0 rid, 1 "", 2 version, 3 request id, 4 domain, 5 address,
    //  6 identity, 7 mechanism, 8 credentials.
    if (n < 8 || zmq_msg_size (&frames [2]) != 3 || memcmp (zmq_msg_data (&frames [2]), "1.0", 3))
        return;                 //  not a request we can answer: libzmq times out
    char address [256];
    snprintf (address, sizeof address, "%.*s", (int) zmq_msg_size (&frames [5]),
              (char *) zmq_msg_data (&frames [5]));
    bool curve = zmq_msg_size (&frames [7]) == 5 && memcmp (zmq_msg_data (&frames [7]), "CURVE", 5) == 0;
    if (!curve || n < 9 || zmq_msg_size (&frames [8]) != 32) {
        tri_log_warn ("TR-CURVE", "%s asked to connect without a CURVE key: refused", address);
        s_zap_reply (&frames [0], &frames [3], "400", "CURVE only");
        return;
    }
    char key [41];
    zmq_z85_encode (key, zmq_msg_data (&frames [8]), 32);
    if (zcertstore_lookup (s_sec.allowed, key)) {
        s_zap_reply (&frames [0], &frames [3], "200", "OK");
        return;
    }
    if (!zhashx_lookup (s_sec.refused, key)) {
        zhashx_insert (s_sec.refused, key, (void *) 1);
        tri_log_warn ("TR-CURVE", "%s refused: public key %s is not in %s/allowed",
                      address, key, s_sec.dir);
    }
    s_zap_reply (&frames [0], &frames [3], "400", "public key not allowed");
}

static void
s_on_zap (tri_watch_t *watch, bool drain)
{
    (void) drain;
    for (int i = 0; i < 64 && watch->active; i++) {
        zmq_msg_t frames [TRI_ZAP_FRAMES + 1];
        int n = 0;
        bool more = true;
        zmq_msg_t extra;
        while (more) {
            zmq_msg_t *frame = n < TRI_ZAP_FRAMES + 1? &frames [n]: &extra;
            zmq_msg_init (frame);
            if (zmq_msg_recv (frame, s_sec.zap, ZMQ_DONTWAIT) < 0) {
                zmq_msg_close (frame);
                if (n == 0 && errno == EAGAIN) {
                    tri_loop_idle (watch);
                    return;
                }
                break;
            }
            more = zmq_msg_more (frame);
            if (frame == &extra)
                zmq_msg_close (frame);
            else
                n++;
        }
        tri_loop_touch (watch);
        if (n > 0)
            s_zap_request (frames, n);
        for (int j = 0; j < n; j++)
            zmq_msg_close (&frames [j]);
    }
}

//  --------------------------------------------------------------------------
//  Start and stop

int
tri_secure_start (const char *dir, bool insecure)
{
    s_sec.insecure = insecure;
    if (!dir || !*dir)
        return 0;
    int rc = TR_ENOMEM;
    if (!(s_sec.dir = strdup (dir)) || !(s_sec.refused = zhashx_new ()))
        goto fail;
    if ((rc = s_load_cert (dir)) || (rc = s_load_allowed (dir)))
        goto fail;
    //  The handler exists before any CURVE socket does, or libzmq would
    //  let every client in.
    rc = TR_ESYS;
    if (!(s_sec.zap = zmq_socket (tri_zctx (), ZMQ_ROUTER)))
        goto fail;
    int zero = 0;
    zmq_setsockopt (s_sec.zap, ZMQ_LINGER, &zero, sizeof zero);
    if (zmq_bind (s_sec.zap, TRI_ZAP_ENDPOINT)) {
        tri_log_error ("TR-CURVE", "cannot bind the ZAP handler at %s: %s", TRI_ZAP_ENDPOINT,
                       zmq_strerror (errno));
        goto fail;
    }
    if ((rc = tri_loop_watch_socket (&s_sec.zap_watch, s_sec.zap, s_on_zap, NULL)))
        goto fail;
    tri_log_debug ("TR-CURVE", "CURVE keys from %s, public key %s", dir,
                   zcert_public_txt (s_sec.cert));
    return 0;
fail:
    tri_secure_stop ();
    s_sec.insecure = insecure;
    return rc;
}

void
tri_secure_stop (void)
{
    tri_loop_unwatch (&s_sec.zap_watch);
    if (s_sec.zap)
        zmq_close (s_sec.zap);
    zcert_destroy (&s_sec.cert);
    zcertstore_destroy (&s_sec.allowed);
    zhashx_destroy (&s_sec.refused);
    free (s_sec.dir);
    memset (&s_sec, 0, sizeof s_sec);
}

bool
tri_secure_on (void)
{
    return s_sec.cert != NULL;
}

//  A client that has not this deployment's server key (another
//  deployment's, or none: plaintext) fails the handshake before ZAP is
//  asked, so its public key is never known: the ROUTER's monitor (the
//  socket layer's, which hands us the events we asked for) says who it
//  was, logged once per host.
int
tri_secure_events (void)
{
    return s_sec.cert? ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL
                     : 0;
}

void
tri_secure_on_event (int code, const char *address, size_t size)
{
    if (!s_sec.refused || !(code & tri_secure_events ()))
        return;
    char host [256];
    snprintf (host, sizeof host, "%.*s", (int) size, address);
    char *port = strrchr (host, ':');
    if (port && port > host + 6)
        *port = 0;
    if (!zhashx_lookup (s_sec.refused, host)) {
        zhashx_insert (s_sec.refused, host, (void *) 1);
        tri_log_warn ("TR-CURVE", "%s refused: its CURVE handshake failed (not a peer of "
                      "this deployment: another deployment's keys, or none)", host);
    }
}

int
tri_secure_server (void *socket)
{
    if (!s_sec.cert)
        return 0;
    int one = 1;
    zmq_setsockopt (socket, ZMQ_CURVE_SERVER, &one, sizeof one);
    zmq_setsockopt (socket, ZMQ_CURVE_SECRETKEY, zcert_secret_key (s_sec.cert), 32);
    return 0;
}

void
tri_secure_client (void *socket)
{
    if (!s_sec.cert)
        return;
    zmq_setsockopt (socket, ZMQ_CURVE_SERVERKEY, zcert_public_key (s_sec.cert), 32);
    zmq_setsockopt (socket, ZMQ_CURVE_PUBLICKEY, zcert_public_key (s_sec.cert), 32);
    zmq_setsockopt (socket, ZMQ_CURVE_SECRETKEY, zcert_secret_key (s_sec.cert), 32);
}

//  --------------------------------------------------------------------------
//  Secure by default: what may be bound without keys

static bool
s_loopback (const char *host, size_t len)
{
    if (len >= 4 && strncmp (host, "127.", 4) == 0)
        return true;
    return (len == 3 && strncmp (host, "::1", 3) == 0)
        || (len == 5 && strncmp (host, "[::1]", 5) == 0)
        || (len == 9 && strncmp (host, "localhost", 9) == 0);
}

int
tri_secure_check_bind (const char *endpoint)
{
    //  Other transports are local (ipc, inproc) or fail to bind anyway.
    if (s_sec.cert || s_sec.insecure || strncmp (endpoint, "tcp://", 6))
        return 0;
    const char *host = endpoint + 6;
    const char *colon = strrchr (host, ':');
    if (colon && s_loopback (host, (size_t) (colon - host)))
        return 0;
    tri_log_error ("TR-INSECURE", "refusing to bind %s without keys: anyone who reaches it "
                   "could call this actor. Make keys with `troupe keygen DIR` (or tr_keygen), "
                   "copy DIR to every host and pass --tr-keys DIR (or set TROUPE_KEYS=DIR); "
                   "or pass --tr-insecure to accept the risk", endpoint);
    return TR_EINVAL;
}

static int
s_ipc_dir_path (char *dir, size_t size)
{
    const char *tmp = getenv ("TMPDIR");
    if (!tmp || !*tmp || strlen (tmp) > 60)
        tmp = "/tmp";
    if (snprintf (dir, size, "%s/troupe-%u", tmp, (unsigned) getuid ()) >= (int) size)
        return TR_EINVAL;
    return 0;
}

int
tri_secure_ipc_dir (char *dir, size_t size)
{
    if (s_ipc_dir_path (dir, size))
        return TR_EINVAL;
    if (mkdir (dir, 0700) && errno != EEXIST) {
        tri_log_error ("TR-IPC", "cannot make %s: %s", dir, strerror (errno));
        return TR_ESYS;
    }
    struct stat st;
    if (lstat (dir, &st) || !S_ISDIR (st.st_mode) || st.st_uid != getuid ()
    ||  (st.st_mode & 0777) != 0700) {
        tri_log_error ("TR-IPC", "%s must be a directory of ours with mode 0700: refusing "
                       "to put our endpoint there", dir);
        return TR_EINVAL;
    }
    return 0;
}

//  --------------------------------------------------------------------------
//  Sweep the endpoints that actors killed by a signal left behind.
//
//  A file is PID-TAG.ipc, made by an actor of that pid. It is removed
//  only when no process has that pid here and nothing listens on it: a
//  pid names a process of this pid namespace only, and an actor of
//  another namespace that shares the directory may hold a pid that does
//  not exist here, so the socket is asked too (a connect to a socket that
//  nobody listens on is refused at once). A pid that exists is left
//  alone, even if it is not an actor's any more: its file goes once that
//  process is gone.

static bool
s_ipc_listened (const char *path)
{
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    if (strlen (path) >= sizeof addr.sun_path)
        return true;
    strcpy (addr.sun_path, path);
    int fd = socket (AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return true;                    //  cannot tell: keep it
    int rc = connect (fd, (struct sockaddr *) &addr, sizeof addr);
    int err = errno;
    close (fd);
    return rc == 0 || (err != ECONNREFUSED && err != ENOENT);
}

void
tri_secure_ipc_sweep (void)
{
    char dir [128];
    struct stat st;
    if (s_ipc_dir_path (dir, sizeof dir)
    ||  lstat (dir, &st) || !S_ISDIR (st.st_mode) || st.st_uid != getuid ()
    ||  (st.st_mode & 0777) != 0700)
        return;
    DIR *d = opendir (dir);
    if (!d)
        return;
    struct dirent *entry;
    size_t swept = 0;
    while ((entry = readdir (d))) {
        //  PID-TAG.ipc, TAG eight characters
        const char *name = entry->d_name;
        char *end;
        long pid = strtol (name, &end, 10);
        if (end == name || *end != '-' || pid <= 0 || pid == getpid ()
        ||  strlen (end + 1) != 12 || !streq (end + 9, ".ipc"))
            continue;
        if (kill ((pid_t) pid, 0) == 0 || errno != ESRCH)
            continue;
        char path [128 + 256];
        snprintf (path, sizeof path, "%s/%s", dir, name);
        if (lstat (path, &st) || !S_ISSOCK (st.st_mode) || st.st_uid != getuid ()
        ||  s_ipc_listened (path))
            continue;
        if (unlink (path) == 0)
            swept++;
    }
    closedir (d);
    if (swept)
        tri_log_debug ("TR-IPC", "removed %zu endpoint%s of actors gone from %s", swept,
                       swept == 1? "": "s", dir);
}
