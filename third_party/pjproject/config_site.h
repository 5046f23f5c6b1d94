/* pjproject compile-time settings for ivr-engine's pjsua2 build (scripts/build_pjsua2.sh).
 *
 * The PyPI pjsua2 wheels keep pjproject's defaults: 4 calls per process and a select()
 * ioqueue of 64 handles, which aborts the process on a burst of INVITEs. A contact-center
 * engine needs many calls per process and must survive floods, so these are raised here.
 * Changing this file changes the build cache key: the next setup rebuilds the wheel.
 */
#define PJSUA_MAX_CALLS             128
#define PJ_IOQUEUE_MAX_HANDLES      1024
#define PJSUA_MAX_CONF_PORTS        512
#define PJMEDIA_HAS_VIDEO           0
#define PJSUA_HAS_VIDEO             0
#define PJMEDIA_HAS_SOUND           0
#define PJMEDIA_AUDIO_DEV_HAS_NULL_AUDIO 1
/* patches/0001-answer-unserved-requests.patch: 405 (with Allow) or 501 for requests outside a
 * dialog that nothing serves, instead of silence; MESSAGE is not accepted (405). */
#define PJSUA_ANSWER_UNSERVED_REQUESTS 1
#define PJSUA_REFUSE_MESSAGE        1
/* patches/0002-options-probe-status.patch: OPTIONS answers 503 while the default account is
 * offline (the engine sets it online when it takes calls, offline when draining), so a load
 * balancer's OPTIONS probe takes a draining node out; a CSeq naming another method gets 400. */
#define PJSUA_OPTIONS_FOLLOW_ONLINE_STATUS 1
