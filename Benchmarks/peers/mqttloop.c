// mqttloop: the plain C libmosquitto peer for the uplink comparison.
//   mqttloop pub PORT COUNT WINDOW TOPIC PAYLOAD_FILE
//     QoS 1 publisher on 127.0.0.1:PORT with at most WINDOW messages in flight (the agent's
//     window), each payload read from PAYLOAD_FILE with its seq patched in; prints
//       P <acked> <seconds from first publish to last PUBACK>
//   mqttloop sub PORT FILTER COUNT IDLE_SECONDS
//     counts messages on FILTER (QoS 1 subscription) until COUNT arrived or IDLE_SECONDS
//     pass without one; prints "sub ready" once subscribed, then
//       R <received> <first_ns> <last_ns>  (CLOCK_MONOTONIC arrival of first and last)
#define _GNU_SOURCE
#include <errno.h>
#include <mosquitto.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static long inflight, acked, received;
static int connected, subscribed;
static int64_t first_ns, last_ns;

static int64_t mono_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void on_connect(struct mosquitto *m, void *u, int rc) {
    (void)m; (void)u;
    pthread_mutex_lock(&lock);
    connected = rc == 0 ? 1 : -1;
    pthread_cond_broadcast(&cond);
    pthread_mutex_unlock(&lock);
}

static void on_publish(struct mosquitto *m, void *u, int mid) {
    (void)m; (void)u; (void)mid;
    pthread_mutex_lock(&lock);
    inflight--;
    acked++;
    last_ns = mono_ns();
    pthread_cond_broadcast(&cond);
    pthread_mutex_unlock(&lock);
}

static void on_subscribe(struct mosquitto *m, void *u, int mid, int n, const int *q) {
    (void)m; (void)u; (void)mid; (void)n; (void)q;
    pthread_mutex_lock(&lock);
    subscribed = 1;
    pthread_cond_broadcast(&cond);
    pthread_mutex_unlock(&lock);
}

static void on_message(struct mosquitto *m, void *u, const struct mosquitto_message *msg) {
    (void)m; (void)u; (void)msg;
    int64_t t = mono_ns();
    pthread_mutex_lock(&lock);
    if (received == 0) first_ns = t;
    last_ns = t;
    received++;
    pthread_cond_broadcast(&cond);
    pthread_mutex_unlock(&lock);
}

static void wait_until(struct timespec *deadline) {
    pthread_cond_timedwait(&cond, &lock, deadline);
}

static struct mosquitto *start(int port, const char *id, int window) {
    mosquitto_lib_init();
    struct mosquitto *m = mosquitto_new(id, true, NULL);
    if (!m) { perror("mosquitto_new"); exit(1); }
    mosquitto_int_option(m, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V311);
    if (window > 0) mosquitto_max_inflight_messages_set(m, (unsigned)window);
    mosquitto_connect_callback_set(m, on_connect);
    mosquitto_publish_callback_set(m, on_publish);
    mosquitto_subscribe_callback_set(m, on_subscribe);
    mosquitto_message_callback_set(m, on_message);
    if (mosquitto_connect(m, "127.0.0.1", port, 30) != MOSQ_ERR_SUCCESS) { fprintf(stderr, "mqttloop: connect failed\n"); exit(1); }
    mosquitto_loop_start(m);
    pthread_mutex_lock(&lock);
    while (connected == 0) pthread_cond_wait(&cond, &lock);
    pthread_mutex_unlock(&lock);
    if (connected < 0) { fprintf(stderr, "mqttloop: connection refused\n"); exit(1); }
    return m;
}

int main(int argc, char **argv) {
    if (argc == 7 && strcmp(argv[1], "pub") == 0) {
        int port = atoi(argv[2]);
        long count = atol(argv[3]);
        int window = atoi(argv[4]);
        const char *topic = argv[5];
        FILE *f = fopen(argv[6], "rb");
        if (!f) { perror(argv[6]); return 1; }
        char payload[4096];
        size_t plen = fread(payload, 1, sizeof payload - 32, f);
        fclose(f);
        struct mosquitto *m = start(port, "bench-c-pub", window);
        char buf[4200];
        int64_t t0 = mono_ns();
        for (long i = 1; i <= count; i++) {
            pthread_mutex_lock(&lock);
            while (inflight >= window) pthread_cond_wait(&cond, &lock);
            inflight++;
            pthread_mutex_unlock(&lock);
            // The seq goes in front, as the agent's JSON carries its own seq.
            int n = snprintf(buf, sizeof buf, "{\"seq\":%ld,", i);
            memcpy(buf + n, payload + 1, plen - 1);
            int rc = mosquitto_publish(m, NULL, topic, n + (int)plen - 1, buf, 1, false);
            if (rc != MOSQ_ERR_SUCCESS) { fprintf(stderr, "mqttloop: publish: %s\n", mosquitto_strerror(rc)); return 1; }
        }
        pthread_mutex_lock(&lock);
        while (acked < count) pthread_cond_wait(&cond, &lock);
        int64_t t1 = last_ns;
        pthread_mutex_unlock(&lock);
        printf("P %ld %.6f\n", acked, (t1 - t0) / 1e9);
        mosquitto_disconnect(m);
        mosquitto_loop_stop(m, false);
        return 0;
    }
    if (argc == 6 && strcmp(argv[1], "sub") == 0) {
        int port = atoi(argv[2]);
        long count = atol(argv[4]);
        double idle = atof(argv[5]);
        struct mosquitto *m = start(port, "bench-c-sub", 0);
        mosquitto_subscribe(m, NULL, argv[3], 1);
        pthread_mutex_lock(&lock);
        while (!subscribed) pthread_cond_wait(&cond, &lock);
        printf("sub ready\n");
        fflush(stdout);
        int64_t idle_ns = (int64_t)(idle * 1e9), since = mono_ns();
        long seen = 0;
        while (received < count) {
            int64_t now = mono_ns();
            if (received != seen) { seen = received; since = now; }
            if (now - since > idle_ns) break;
            struct timespec d;
            clock_gettime(CLOCK_REALTIME, &d);
            d.tv_nsec += 200000000;
            if (d.tv_nsec >= 1000000000) { d.tv_sec++; d.tv_nsec -= 1000000000; }
            wait_until(&d);
        }
        printf("R %ld %lld %lld\n", received, (long long)first_ns, (long long)last_ns);
        pthread_mutex_unlock(&lock);
        fflush(stdout);
        mosquitto_disconnect(m);
        mosquitto_loop_stop(m, false);
        return 0;
    }
    fprintf(stderr, "usage: mqttloop pub PORT COUNT WINDOW TOPIC PAYLOAD_FILE | mqttloop sub PORT FILTER COUNT IDLE_SECONDS\n");
    return 2;
}
