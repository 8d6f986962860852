#!/bin/sh
# One-time setup of Mosquitto's dynamic-security plugin for p2pd, against a running broker.
#
# Before the broker's first start, create the plugin's file with an admin user:
#   mosquitto_ctrl dynsec init /var/lib/mosquitto/dynamic-security.json admin
# then start Mosquitto and run:
#   MQTT_HOST=localhost MQTT_PORT=1883 ADMIN_USER=admin ADMIN_PASSWORD=... \
#   P2PD_USER=p2pd P2PD_PASSWORD=... ./dynsec-setup.sh
# and start p2pd with --mqtt-url mqtt://p2pd:<P2PD_PASSWORD>@<host>:1883 --mqtt-dynsec.
#
# It creates the role `p2pd-service` (subscribe to the signal topics, also as the shared group
# `$share/p2pd/...`, publish answers and errors to any app or device) and the client `p2pd` with
# that role and `admin` (p2pd writes each app's and device's client and role, see
# src/broker/dynsec.ts). Running it again changes nothing.
set -eu
: "${MQTT_HOST:=localhost}" "${MQTT_PORT:=1883}" "${ADMIN_USER:=admin}" "${P2PD_USER:=p2pd}"
: "${ADMIN_PASSWORD:?set ADMIN_PASSWORD}" "${P2PD_PASSWORD:?set P2PD_PASSWORD}"

ctrl() {
  mosquitto_ctrl -h "$MQTT_HOST" -p "$MQTT_PORT" -u "$ADMIN_USER" -P "$ADMIN_PASSWORD" dynsec "$@" 2>&1 \
    | grep -v -e 'without encryption' -e 'configuration changes you are making' -e '^$' || true
}

ctrl createRole p2pd-service
ctrl addRoleACL p2pd-service subscribePattern 'p2p/#' allow
# Mosquitto 2.0 checks a shared subscription against its full filter, group included.
ctrl addRoleACL p2pd-service subscribePattern '$share/p2pd/p2p/#' allow
ctrl addRoleACL p2pd-service publishClientSend 'p2p/#' allow
ctrl addRoleACL p2pd-service publishClientReceive 'p2p/#' allow

ctrl createClient "$P2PD_USER" -p "$P2PD_PASSWORD"
ctrl setClientPassword "$P2PD_USER" "$P2PD_PASSWORD"
ctrl addClientRole "$P2PD_USER" p2pd-service
ctrl addClientRole "$P2PD_USER" admin
echo "p2pd: client $P2PD_USER ready on $MQTT_HOST:$MQTT_PORT"
