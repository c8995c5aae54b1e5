#!/bin/sh
# Turns a VM's raw serial output into plain lines: firmware may clear the screen and toggle
# line wrap with escape sequences (SeaBIOS does when it has a console), and the serial
# console ends lines with CRLF. Used by both VM harnesses.
#
# Usage: clean-serial.sh RAW OUT   (an unreadable RAW gives an empty OUT)
esc=$(printf '\033')
cr=$(printf '\r')
sed -e "s/${esc}\[[0-9;?]*[A-Za-z]//g" -e "s/${esc}[c()][0-9A-B]\{0,1\}//g" -e "s/${esc}//g" -e "s/${cr}//g" \
	"$1" >"$2" 2>/dev/null || : >"$2"
