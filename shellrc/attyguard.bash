# attyguard's rc for the interactive bash child (bash --rcfile THIS -i).
#
# It sources the user's own start-up files exactly as bash would, then installs
# attyguard's hooks LAST so they wrap whatever the user configured:
#   PS1  -> an invisible mark "B" while readline shows the prompt only; the
#           user's prompt is back in PS1 whenever a line runs (hooks.bash:
#           __ag_accept), kept in __ag_ps1 and expanded with ${..@P} for the
#           front end, which draws it
#   PS0  -> mark "C" (the command starts: everything before it was readline's echo)
#   PS2  -> mark "P" (bash's parser needs more input: a continuation line)
#   PROMPT_COMMAND -> __ag_pre first (saves $?) ... user's items ... __ag_post
#           last: a record on the side channel (status, PWD, expanded PS1/PS2),
#           then mark "D", then it waits for the front end's ack so typeahead
#           is handed back to the front end instead of being read by readline.
# Marks are ESC ] 133 ; ag-<nonce> ; <letter> [; args] BEL. The nonce is
# per-session and never exported, so a command cannot forge them.
# Records go to a FIFO in a 0700 directory, opened per write (no fd leaks into
# commands), as NUL-terminated fields: @<nonce> TYPE fields... @end.

# The nonce, the channel's directory and the first line token come on an
# inherited pipe (fd $__AG_FD), never in the environment or argv, where any
# process could read them (/proc/PID/environ); the pipe is closed before
# anything else runs.
IFS= read -r -d '' __ag_nonce <&"$__AG_FD"
IFS= read -r -d '' __ag_dir <&"$__AG_FD"
IFS= read -r -d '' __ag_tok <&"$__AG_FD"
exec {__AG_FD}<&-
__ag_login=$__AG_LOGIN
__ag_norc=$__AG_NORC
__ag_noprofile=$__AG_NOPROFILE
__ag_rcjudge=$__AG_RCJUDGE
unset __AG_FD __AG_LOGIN __AG_NORC __AG_NOPROFILE __AG_RCJUDGE

# --- the front end's verdict on those files (attyguard/rcjudge.py) -------------
# One line per file: ok FILE COPY (source the judged copy), no FILE MESSAGE
# (skip it, say why), as-is FILE (judging is off); then "end". Opened
# read-write, so the open never blocks; a front end that never answers costs
# 30 s and then no rc file is sourced (never an unjudged one).
declare -A __ag_rc=()
if [[ -n $__ag_rcjudge ]] && exec {__ag_fd}<>"$__ag_dir/rc"; then
  while IFS=$'\t' read -r -t 30 -u "$__ag_fd" __ag_k __ag_p __ag_v; do
    [[ $__ag_k == end ]] && break
    __ag_rc[$__ag_p]="$__ag_k:$__ag_v"
  done
  exec {__ag_fd}<&-
  unset __ag_fd __ag_k __ag_p __ag_v
fi
# Sets __ag_src to what to source for start-up file $1 ('' = nothing).
__ag_pick() {
  __ag_src=$1
  [[ -z $__ag_rcjudge ]] && return
  local a=${__ag_rc[$1]-}
  case $a in
    ok:*) __ag_src=${a#ok:} ;;
    as-is:*) ;;
    no:*) printf '%s\n' "${a#no:}" >&2; __ag_src= ;;
    *) printf 'attyguard: %s was not judged in time; not sourced\n' "$1" >&2; __ag_src= ;;
  esac
}

# --- the user's start-up files, as bash itself would read them -----------------
if [[ $__ag_login == native ]]; then
  # A real login shell (argv[0] -bash, started with --noprofile) sources this
  # file from its first PROMPT_COMMAND (attyguard/shell/spawn.py); that command
  # goes. The profile files are read below, each one judged first, as bash
  # itself would read them.
  __ag_me="[[ \$\$ == $$ ]] && . '${BASH_SOURCE[0]}'"
  for __ag_i in "${!PROMPT_COMMAND[@]}"; do
    __ag_pc=${PROMPT_COMMAND[__ag_i]//"$__ag_me"/}
    __ag_pc=${__ag_pc#"${__ag_pc%%[!;[:space:]]*}"}
    PROMPT_COMMAND[__ag_i]=$__ag_pc
  done
  unset __ag_me __ag_i __ag_pc
fi
if [[ -n $__ag_login && -z $__ag_noprofile ]]; then
  if [[ -r /etc/profile ]]; then
    __ag_pick /etc/profile; [[ -n $__ag_src ]] && . "$__ag_src"
  fi
  for __ag_f in ~/.bash_profile ~/.bash_login ~/.profile; do
    if [[ -r $__ag_f ]]; then
      __ag_pick "$__ag_f"; [[ -n $__ag_src ]] && . "$__ag_src"
      break
    fi
  done
  unset __ag_f
elif [[ -z $__ag_login && -z $__ag_norc ]]; then
  if [[ -r ~/.bashrc ]]; then
    __ag_pick ~/.bashrc; [[ -n $__ag_src ]] && . "$__ag_src"
  fi
fi
unset __ag_norc __ag_noprofile __ag_rcjudge __ag_rc __ag_src
unset -f __ag_pick

. "${BASH_SOURCE[0]%/*}/hooks.bash"
if [[ $__ag_login == native ]]; then
  # We are inside the first PROMPT_COMMAND: report this prompt as __ag_post would.
  __ag_post
fi
