# attyguard's rc for the interactive bash child (bash --rcfile THIS -i).
#
# It sources the user's own start-up files exactly as bash would, then installs
# attyguard's hooks LAST so they wrap whatever the user configured:
#   PS1  -> an invisible mark "B" (the user's PS1 is kept in __ag_ps1 and
#           expanded with ${..@P}; the front end draws it)
#   PS0  -> mark "C" (the command starts: everything before it was readline's echo)
#   PS2  -> mark "P" (bash's parser needs more input: a continuation line)
#   PROMPT_COMMAND -> __ag_pre first (saves $?) ... user's items ... __ag_post
#           last: a record on the side channel (status, PWD, expanded PS1/PS2),
#           then mark "D", then it waits for the front end's ack so typeahead
#           is handed back to the front end instead of being read by readline.
# Marks are ESC ] 133 ; ag-<nonce> ; <letter> [; args] BEL. The nonce is
# per-session and never exported, so a command cannot forge them by accident.
# Records go to a FIFO in a 0700 directory, opened per write (no fd leaks into
# commands), as NUL-terminated fields: @<nonce> TYPE fields... @end.

__ag_nonce=$__AG_NONCE
__ag_dir=$__AG_DIR
__ag_login=$__AG_LOGIN
__ag_norc=$__AG_NORC
__ag_noprofile=$__AG_NOPROFILE
unset __AG_NONCE __AG_DIR __AG_LOGIN __AG_NORC __AG_NOPROFILE

# --- the user's start-up files, as bash itself would read them -----------------
if [[ $__ag_login == native ]]; then
  # A real login shell (argv[0] -bash) has read its profile files itself and
  # sources this file from its first PROMPT_COMMAND (attyguard/shell/spawn.py).
  # That command goes (a profile may have added to it: "x;$PROMPT_COMMAND").
  __ag_me="[[ \$\$ == $$ ]] && . '${BASH_SOURCE[0]}'"
  for __ag_i in "${!PROMPT_COMMAND[@]}"; do
    __ag_pc=${PROMPT_COMMAND[__ag_i]//"$__ag_me"/}
    __ag_pc=${__ag_pc#"${__ag_pc%%[!;[:space:]]*}"}
    PROMPT_COMMAND[__ag_i]=$__ag_pc
  done
  unset __ag_me __ag_i __ag_pc
elif [[ -n $__ag_login && -z $__ag_noprofile ]]; then
  [[ -r /etc/profile ]] && . /etc/profile
  for __ag_f in ~/.bash_profile ~/.bash_login ~/.profile; do
    if [[ -r $__ag_f ]]; then . "$__ag_f"; break; fi
  done
  unset __ag_f
  # Not a real login shell as far as bash knows (it was started with --rcfile);
  # keep `logout` working the way users expect.
  logout() { exit "$@"; }
elif [[ -z $__ag_login && -z $__ag_norc ]]; then
  [[ -r ~/.bashrc ]] && . ~/.bashrc
fi
unset __ag_norc __ag_noprofile

. "${BASH_SOURCE[0]%/*}/hooks.bash"
if [[ $__ag_login == native ]]; then
  # We are inside the first PROMPT_COMMAND: report this prompt as __ag_post would.
  __ag_post
fi
