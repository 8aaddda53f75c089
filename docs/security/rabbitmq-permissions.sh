#!/bin/sh
# RabbitMQ users for ari-proxy, each allowed exactly what its role needs (docs/security.md).
#
#   rabbitmq-permissions.sh proxy VHOST USER PASSWORD      the ari-proxy servers
#   rabbitmq-permissions.sh app VHOST APP USER PASSWORD    one application's clients
#
# Run it once per role (and per application) on a broker node. The test suite runs this very
# script (tests/security/test_security_permissions.py).
set -eu
role=$1; vhost=$2
ctl() { rabbitmqctl -q "$@"; }
ctl add_vhost "$vhost" 2>/dev/null || true

case "$role" in
proxy)
  user=$3; password=$4
  ctl add_user "$user" "$password" 2>/dev/null || ctl change_password "$user" "$password"
  # Servers declare the exchanges and their queues, publish events, replies and announcements,
  # and consume requests: everything in the vhost.
  ctl set_permissions -p "$vhost" "$user" '.*' '.*' '.*'
  ;;
app)
  app=$3; user=$4; password=$5
  ctl add_user "$user" "$password" 2>/dev/null || ctl change_password "$user" "$password"
  # The queues an application's clients declare: private broker-named ones (events, dialogs),
  # their announcement queue, and the application's listen group. No configure permission on
  # the exchanges: the clients only check they exist (a proxy declares them).
  queues="amq\.gen-.*|ari\.announce-.*|ari-proxy-listen\.ari-proxy-listen-$app\..*"
  ctl set_permissions -p "$vhost" "$user" \
    "^($queues)\$" \
    "^(ari\.(request|ping|event)|$queues)\$" \
    "^(ari\.(event|announce)|$queues)\$"
  # Topic permissions: which routing keys it may publish on and bind with.
  ctl set_topic_permissions -p "$vhost" "$user" ari.request \
    "^ari\.(get|data|command|create)\.$app(\..*)?\$" '^$'
  ctl set_topic_permissions -p "$vhost" "$user" ari.event \
    "^ari\.presence\.listener\.$app\$" \
    "^(ari\.(event|dialogevent|listen)\.$app\..*|ari\.presence\.proxy\..*)\$"
  ;;
*)
  echo "usage: $0 proxy VHOST USER PASSWORD | app VHOST APP USER PASSWORD" >&2
  exit 2
  ;;
esac
