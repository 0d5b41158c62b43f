# A second session held open, "session A", for shell suites that interleave two sessions
# (sourced after PSQL and DB are set).
#   session_a_start [psql argument...]: start it (psql -d $DB and the arguments; PGOPTIONS
#       and the like pass through the environment of the call);
#   a SQL: run SQL in it and print its output (nothing, and a line on stderr, once it has
#       ended: the assertions that need it then fail by their output, and the others run);
#   session_a_end: end it and wait for it.
# Not in a pipeline: the coprocess's descriptors do not reach a pipeline's subshells.

session_a_start() {
    # Writing to a session that has ended must not end the script (SIGPIPE).
    trap '' PIPE
    coproc SESSION_A { "${PSQL[@]}" -d "$DB" "$@" 2>&1; }
    # Bash unsets SESSION_A and SESSION_A_PID once the coprocess has ended: keep them.
    SA_IN=${SESSION_A[1]} SA_OUT=${SESSION_A[0]} SA_WAIT=$SESSION_A_PID
}

a() {
    { printf '%s\n\\echo __end__\n' "$1" >&"$SA_IN"; } 2>/dev/null || { echo "# session A has ended" >&2; return 0; }
    local line out=""
    while IFS= read -r -t 60 line <&"$SA_OUT"; do
        [ "$line" = "__end__" ] && break
        out+="$line"$'\n'
    done
    printf '%s' "${out%$'\n'}"
}

session_a_end() {
    exec {SA_IN}>&- 2>/dev/null
    wait "$SA_WAIT" 2>/dev/null
    return 0
}
