// bench/worker_bench.sh's client of the queue protocol (docs/queue-protocol.md), on rabbitmq-c:
// publishes N requests for ACTION to packvisor.executions (run.RUNTIME) keeping CONCURRENCY of
// them in flight, each with reply_to an exclusive queue of its own and a correlation id, and
// waits for every result. Prints one JSON line: {"requests", "seconds", "per_second", "failed"}.
// A result that is not "succeeded", or a correlation id answered twice, counts as failed.
//
//   queue_client HOST PORT VHOST ACTION RUNTIME N CONCURRENCY WARMUP
#include <amqp.h>
#include <amqp_tcp_socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void check_reply(amqp_rpc_reply_t reply, const char* what) {
  if (reply.reply_type != AMQP_RESPONSE_NORMAL) {
    fprintf(stderr, "queue_client: %s failed (reply type %d)\n", what, (int)reply.reply_type);
    exit(1);
  }
}

static double now_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static char run_tag[32];
static amqp_bytes_t reply_queue;
static const char* action;
static char routing_key[128];

static void publish(amqp_connection_state_t conn, long index) {
  char id[96], body[512];
  snprintf(id, sizeof id, "bench-%s-%ld", run_tag, index);
  snprintf(body, sizeof body,
           "{\"version\":1,\"execution_id\":\"%s\",\"action_ref\":\"%s\",\"parameters\":{},"
           "\"submitted_at\":\"2026-12-07T00:00:00Z\"}",
           id, action);
  amqp_basic_properties_t props;
  memset(&props, 0, sizeof props);
  props._flags = AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG |
                 AMQP_BASIC_REPLY_TO_FLAG | AMQP_BASIC_CORRELATION_ID_FLAG;
  props.content_type = amqp_cstring_bytes("application/json");
  props.delivery_mode = 2;
  props.reply_to = reply_queue;
  props.correlation_id = amqp_cstring_bytes(id);
  if (amqp_basic_publish(conn, 1, amqp_cstring_bytes("packvisor.executions"),
                         amqp_cstring_bytes(routing_key), 0, 0, &props,
                         amqp_cstring_bytes(body)) != 0) {
    fprintf(stderr, "queue_client: publish failed\n");
    exit(1);
  }
}

// Runs `count` requests (indices from `first`) with `concurrency` in flight; returns failures.
static long run(amqp_connection_state_t conn, long first, long count, long concurrency,
                unsigned char* seen) {
  long sent = 0, got = 0, failed = 0;
  while (sent < count && sent < concurrency) publish(conn, first + sent++);
  while (got < count) {
    amqp_envelope_t envelope;
    amqp_maybe_release_buffers(conn);
    amqp_rpc_reply_t reply = amqp_consume_message(conn, &envelope, NULL, 0);
    check_reply(reply, "consume");
    ++got;
    const amqp_bytes_t* cid = &envelope.message.properties.correlation_id;
    char text[96] = {0};
    size_t len = cid->len < sizeof text - 1 ? cid->len : sizeof text - 1;
    memcpy(text, cid->bytes, len);
    const char* dash = strrchr(text, '-');
    long index = dash ? atol(dash + 1) : -1;
    const char* needle = "\"status\":\"succeeded\"";
    amqp_bytes_t b = envelope.message.body;
    int ok = b.len > strlen(needle) && memmem(b.bytes, b.len, needle, strlen(needle)) != NULL;
    if (index < first || index >= first + count || seen[index]) ok = 0;
    if (index >= 0 && index < first + count) seen[index] = 1;
    if (!ok) {
      if (failed == 0) fprintf(stderr, "queue_client: %.*s\n", (int)b.len, (char*)b.bytes);
      ++failed;
    }
    amqp_destroy_envelope(&envelope);
    if (sent < count) publish(conn, first + sent++);
  }
  return failed;
}

int main(int argc, char** argv) {
  if (argc != 9) {
    fprintf(stderr, "usage: queue_client HOST PORT VHOST ACTION RUNTIME N CONCURRENCY WARMUP\n");
    return 2;
  }
  const char* host = argv[1];
  int port = atoi(argv[2]);
  const char* vhost = argv[3];
  action = argv[4];
  snprintf(routing_key, sizeof routing_key, "run.%s", argv[5]);
  long n = atol(argv[6]), concurrency = atol(argv[7]), warmup = atol(argv[8]);
  snprintf(run_tag, sizeof run_tag, "%lx%lx", (long)time(NULL), (long)getpid());

  amqp_connection_state_t conn = amqp_new_connection();
  amqp_socket_t* socket = amqp_tcp_socket_new(conn);
  if (!socket || amqp_socket_open(socket, host, port) != 0) {
    fprintf(stderr, "queue_client: cannot connect to %s:%d\n", host, port);
    return 1;
  }
  check_reply(amqp_login(conn, vhost, 0, 131072, 0, AMQP_SASL_METHOD_PLAIN, "guest", "guest"),
              "login");
  amqp_channel_open(conn, 1);
  check_reply(amqp_get_rpc_reply(conn), "channel.open");
  amqp_queue_declare_ok_t* declared =
      amqp_queue_declare(conn, 1, amqp_empty_bytes, 0, 0, 1, 1, amqp_empty_table);
  check_reply(amqp_get_rpc_reply(conn), "queue.declare");
  reply_queue = amqp_bytes_malloc_dup(declared->queue);
  amqp_basic_consume(conn, 1, reply_queue, amqp_empty_bytes, 0, 1, 0, amqp_empty_table);
  check_reply(amqp_get_rpc_reply(conn), "basic.consume");

  unsigned char* seen = calloc((size_t)(warmup + n), 1);
  long failed = run(conn, 0, warmup, concurrency, seen);
  double start = now_seconds();
  failed += run(conn, warmup, n, concurrency, seen);
  double seconds = now_seconds() - start;
  printf(
      "{\"requests\": %ld, \"concurrency\": %ld, \"seconds\": %.3f, \"per_second\": %.1f, "
      "\"failed\": %ld}\n",
      n, concurrency, seconds, n / seconds, failed);
  amqp_channel_close(conn, 1, AMQP_REPLY_SUCCESS);
  amqp_connection_close(conn, AMQP_REPLY_SUCCESS);
  amqp_destroy_connection(conn);
  free(seen);
  return failed == 0 ? 0 : 1;
}
