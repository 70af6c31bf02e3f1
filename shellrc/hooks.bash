# attyguard's hooks (sourced last by attyguard.bash, and again to repair them).
# Needs: __ag_nonce, __ag_dir, __ag_tok. Sourcing it twice changes nothing.
#
# Side doors (issue 9, family 7): bash runs only lines the front end handed
# over. Every line arrives with a one-time token that __ag_accept checks at
# Enter (a key injected with TIOCSTI, or typed into a `read` that left
# readline, has none: the line is emptied and reported); the functions and
# constants here are readonly (a redefined __ag_* hook cannot run), and the
# key bindings are put back at every prompt (a `bind -x` on our private key
# sequences lasts one command at most).
if [[ -n ${__ag_installed-} ]]; then
  __ag_fix_hooks
  return 0
fi

__ag_mark() { printf '\e]133;ag-%s;%s\a' "$__ag_nonce" "$1"; }
__ag_b=$'\e]133;ag-'"$__ag_nonce"$';B\a'
__ag_c=$'\e]133;ag-'"$__ag_nonce"$';C\a'
__ag_p=$'\e]133;ag-'"$__ag_nonce"$';P\a'
# Hidden prompts: readline must count them as zero-width.
# PS0 counts commands (__ag_n); __ag_post records the count it reported
# (__ag_done). If PROMPT_COMMAND did not run (unset, replaced), the PS1
# expansion notices (index 0 of __ag_ok is unset) and runs __ag_rescue in a
# command substitution: it reports and drains typeahead like __ag_post, so
# keys typed meanwhile still cannot reach readline. Normally no fork happens.
__ag_n=${__ag_n:-0}
__ag_done=${__ag_done:-0}
__ag_ok=([1]="$__ag_b")
# PS1 is the user's whenever their code runs, and the mark only while
# readline shows the prompt: __ag_post (last in PROMPT_COMMAND) takes what
# the command left in PS1 as the user's prompt (__ag_ps1) and puts the mark
# in; __ag_accept, at Enter, puts the user's prompt back before the line
# runs. So `echo $PS1`, `declare -p PS1`, and a tool that saves, prefixes and
# later restores PS1 (venv's activate/deactivate, conda, nvm) all see and
# keep the user's prompt, never the mark. (The front end draws the prompt
# from ${__ag_ps1@P}, sent in the D record.)
__ag_ps1_mark='\[${__ag_ok[__ag_done==__ag_n]:-$(__ag_rescue)}\]'
__ag_ps2_mark='\['"$__ag_p"'\]'
__ag_ps0_mark='${__ag_ok[__ag_n+=1]::0}'"$__ag_c"
# History expansion is the front end's (attyguard/shell/history_expand.py):
# bash must not expand the (already expanded) line again. `set -H`/`set +H`
# stay the user's; bash's histchars is kept empty and the user's characters
# live in __ag_hc (a new value the user gives histchars is taken over at the
# next prompt; `unset histchars` means bash's default).
[[ -z ${__ag_hc+set} ]] && __ag_hc=${histchars-'!^#'}

if [[ -z ${__ag_ps1+set} ]]; then
  __ag_ps1=${PS1-'\s-\v\$ '}
  __ag_ps1_unset=
  __ag_ps2=${PS2-'> '}
fi
__ag_ran_pre=

__ag_names() {
  # At every prompt, on the side channel (an N record, sent with T): what the
  # front end must know about a line without asking bash
  # (attyguard/shell/state.py): every alias with its value, the hash-table
  # entries whose program is not named like the command (`hash -p FILE ls`),
  # every function name (one field, as `compgen` prints them) and the traps
  # (`trap -p`: a DEBUG trap runs before every command). The fields are left
  # in the caller's __ag_nrec. The function names, the traps and the shell key bindings
  # (__ag_bind) are read back through one file: a write and a read of it per
  # prompt instead of three of each. (Not written to the channel directly:
  # the builtins write line by line, and every write to the channel wakes
  # the front end.)
  local k p km=emacs
  local -a out=() got=()
  for k in "${!BASH_ALIASES[@]}"; do out+=(a "$k" "${BASH_ALIASES[$k]}"); done
  for k in "${!BASH_CMDS[@]}"; do
    p=${BASH_CMDS[$k]}
    [[ ${p##*/} == "$k" ]] || out+=(h "$k" "$p")
  done
  [[ -o vi ]] && km=vi-insert
  { compgen -A function; printf '\0'; trap -p; printf '\0'; bind -m "$km" -X; } \
    >"$__ag_dir/fbody" 2>/dev/null
  mapfile -t -d '' got <"$__ag_dir/fbody"
  __ag_nrec=("${out[@]}" F "${got[0]-}" T "${got[1]-}")
  [[ -n ${got[2]-} && ${got[2]} == "${__ag_bound-}" ]] || __ag_bind "${got[2]-}"
}

__ag_accept() {
  # Bound to Enter (before accept-line, in one macro). At the prompt the line
  # must carry US TOKEN US NEXT, as the front end sends it (before the line;
  # after it only in the repair line): the token is checked and the next one
  # kept. Anything else did not come from the front
  # end: emptied (readline then accepts an empty line) and reported once (F).
  # Inside a command (`read -e`, __ag_n != __ag_done) Enter is left alone,
  # unless PROMPT_COMMAND lost __ag_post (unset, or replaced as a whole
  # array): then nothing reported the last prompt, __ag_n never caught up,
  # and keys queued while the command ran are at a prompt readline drew
  # (the front end repairs the hooks, with a token, once it sees bash idle).
  local __ag_st=$?
  if ((__ag_n == __ag_done)) || [[ " ${PROMPT_COMMAND[*]-} " != *[\ \;]__ag_post[\ \;]* ]]
  then
    local __ag_l=$READLINE_LINE __ag_got= __ag_next=
    if [[ $__ag_l == $'\x1f'*$'\x1f'*$'\x1f'* ]]; then
      # Every line the front end sends: US TOKEN US NEXT US LINE. Keys
      # injected while readline waited (TIOCSTI, no Enter) come before the
      # first US: then this does not match, and neither does the form below.
      __ag_l=${__ag_l#$'\x1f'}
      __ag_got=${__ag_l%%$'\x1f'*}
      __ag_l=${__ag_l#*$'\x1f'}
      __ag_next=${__ag_l%%$'\x1f'*}
      __ag_l=${__ag_l#*$'\x1f'}
    elif [[ $__ag_l == *$'\x1f'*$'\x1f'* ]]; then
      # The repair line (shell/bash.py, _check_stalled): LINE US TOKEN US NEXT,
      # so that a bash without these hooks reads the tokens as a comment; it
      # begins with a ^U, which discards anything before it.
      __ag_next=${__ag_l##*$'\x1f'}
      __ag_l=${__ag_l%$'\x1f'*}
      __ag_got=${__ag_l##*$'\x1f'}
      __ag_l=${__ag_l%$'\x1f'*}
    fi
    # (Patterns, not =~: a regex is compiled again at every use, ~15 us per line.
    # The characters are listed, not a range: ranges follow the locale
    # without globasciiranges.)
    if [[ -n $__ag_got && $__ag_got == "$__ag_tok" && ${#__ag_next} == 22 \
          && $__ag_next != *[!ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/]* ]]
    then
      READLINE_LINE=$__ag_l
      __ag_tok=$__ag_next
    else
      [[ -n $READLINE_LINE ]] && __ag_record F "$READLINE_LINE"
      READLINE_LINE=
    fi
    READLINE_POINT=${#READLINE_LINE}
    # The line runs with the user's prompt in PS1 (the prompt readline shows
    # is already drawn; it keeps its own copy).
    if [[ ${PS1-} == "$__ag_ps1_mark" ]]; then
      if [[ -n $__ag_ps1_unset ]]; then unset PS1; else PS1=$__ag_ps1; fi
    fi
  fi
  __ag_setstatus "$__ag_st" "$1"
}

__ag_bind() {
  # Our keys, in every editing mode's keymap (`set -o vi` keeps them working).
  # Checked at every prompt, so a user's `bind -x` on them lasts one command
  # at most: reading back the current keymap's shell bindings is one builtin
  # (~0.2 ms); binding them all again (~2 ms) only when they changed. (Enter's
  # macro is not read back: `bind -s` costs as much again, and a line of ours
  # accepted without it would run with its token attached, visibly broken.)
  # $1, if given: the current keymap's `bind -X`, already read (__ag_names).
  local km=emacs now=${1-}
  [[ -o vi ]] && km=vi-insert
  if (($# == 0)); then
    bind -m "$km" -X >"$__ag_dir/fbody" 2>/dev/null
    IFS= read -r -d '' now <"$__ag_dir/fbody"
  fi
  [[ -n $now && $now == "${__ag_bound-}" ]] && return 0
  for km in emacs vi-insert vi-command; do
    bind -m "$km" -x '"\e[57701~": __ag_complete' 2>/dev/null
    bind -m "$km" -x '"\e[57702~": __ag_repair' 2>/dev/null
    bind -m "$km" -x '"\e[57703~": __ag_state "$_"' 2>/dev/null
    bind -m "$km" -x '"\e[57704~": __ag_hist "$_"' 2>/dev/null
    bind -m "$km" -x '"\e[57706~": __ag_accept "$_"' 2>/dev/null
    bind -m "$km" '"\e[57707~": accept-line' 2>/dev/null
    bind -m "$km" '"\C-m": "\e[57706~\e[57707~"' 2>/dev/null
    bind -m "$km" '"\C-j": "\e[57706~\e[57707~"' 2>/dev/null
  done
  km=emacs
  [[ -o vi ]] && km=vi-insert
  bind -m "$km" -X >"$__ag_dir/fbody" 2>/dev/null
  __ag_bound=
  IFS= read -r -d '' __ag_bound <"$__ag_dir/fbody"
}

__ag_record() {
  # One write per record; the FIFO reader is always open (O_RDWR) on the other end.
  printf '%s\0' "@$__ag_nonce" "$@" @end >"$__ag_dir/ch" 2>/dev/null
}

__ag_setstatus() { return "$1"; }  # (a second argument only sets $_)

__ag_pre() {
  # Frameworks that prepend with PROMPT_COMMAND="x;$PROMPT_COMMAND" (direnv)
  # make a second call: only the first one sees the command's status.
  local st=$?
  if [[ -z $__ag_ran_pre ]]; then
    __ag_status=$st
    __ag_ran_pre=1
  fi
  return "$__ag_status"
}

__ag_fix_hooks() {
  # Keep __ag_pre first and __ag_post last however the user or a framework
  # (bash-preexec, starship, direnv…) rewrote PROMPT_COMMAND. At almost every
  # prompt nothing changed since the last one: the checks below compare
  # first and rebuild only what did (bash interprets every statement here,
  # at every prompt, on the way to the D mark).
  if [[ ${PROMPT_COMMAND[*]@Q} != "${__ag_pc-(none)}" ]]; then
    local -a kept=()
    local item
    for item in "${PROMPT_COMMAND[@]}"; do
      [[ $item == __ag_pre || $item == __ag_post || -z $item ]] || kept+=("$item")
    done
    PROMPT_COMMAND=(__ag_pre "${kept[@]}" __ag_post)
    __ag_pc=${PROMPT_COMMAND[*]@Q}
  fi
  # The user may have set PS1/PS2 at the prompt or in a PROMPT_COMMAND item.
  __ag_ok=([1]="$__ag_b")
  if [[ -z ${PS1+set} ]]; then
    __ag_ps1= __ag_ps1_unset=1
  else
    __ag_ps1_unset=
    # (a mark a PROMPT_COMMAND item saw at the first prompt, kept in a
    # prompt it built, stands for the user's prompt; quoted replacement:
    # no patsub_replacement `&`)
    [[ $PS1 == "$__ag_ps1" || $PS1 == "$__ag_ps1_mark" ]] \
      || __ag_ps1=${PS1//"$__ag_ps1_mark"/"$__ag_ps1"}
  fi
  if [[ $PS2 != "$__ag_ps2_mark" ]]; then
    __ag_ps2=${PS2//"$__ag_ps2_mark"/"$__ag_ps2"}
  fi
  PS1=$__ag_ps1_mark
  PS2=$__ag_ps2_mark
  [[ $PS0 == *"$__ag_ps0_mark"* ]] || PS0=$__ag_ps0_mark${PS0//"$__ag_ps0_mark"/}
  __ag_done=$__ag_n
  histchars=
  # Child shells must not inherit the hidden prompts (PS1 is the user's, with
  # the user's attributes, whenever a command runs).
  [[ ${PS2@a}${PS0@a}${PROMPT_COMMAND@a} == *x* ]] && export -n PS2 PS0 PROMPT_COMMAND
  # (At a prompt, __ag_post passes "later": __ag_report checks the bindings
  # while the front end answers the D mark.)
  [[ ${1-} == later ]] || __ag_bind
}

__ag_report() {
  # $1 status, $2 "1" if reported by the rescue path. Record, D mark, then
  # hand typeahead back: keys typed while the command ran are still queued
  # on the tty; read them up to the front end's ack (GS nonce GS NUL) so they
  # are classified in the prompt buffer instead of reaching readline.
  local st=$1 ps1 ps2=$__ag_ps2 __ag_ch=
  __ag_setstatus "$st"
  ps1=${__ag_ps1@P}
  # (PS2 is most often plain text, e.g. "> ": nothing to expand)
  if [[ $ps2 == *[\\\$\`]* ]]; then
    __ag_setstatus "$st"
    ps2=${__ag_ps2@P}
  fi
  local mode=emacs
  [[ -o vi ]] && mode=vi
  # History expansion as the user has it: their characters if `set -H`, and
  # whether `shopt -s histverify` wants the result edited rather than run.
  local hx= hv=
  [[ $- == *H* ]] && hx=$__ag_hc
  [[ :$BASHOPTS: == *:histverify:* ]] && hv=v  # (BASHOPTS: no builtin call)
  # This prompt's three records (D, N, T) share one open of the channel,
  # closed again before readline starts (so no command inherits it).
  # (No channel, the session directory gone: nothing reads the records.)
  # (-p first: the open needs no redirection of stderr, itself an open.)
  [[ -p $__ag_dir/ch ]] && exec {__ag_ch}>"$__ag_dir/ch"
  [[ -n $__ag_ch ]] && printf '%s\0' "@$__ag_nonce" D "$st" "$PWD" "$ps1" "$ps2" "$2" "$mode" \
    "$hx" "$hv" @end >&"$__ag_ch"
  # To the terminal itself: stdout/stderr may be redirected (exec 2>log), and
  # in the rescue path stdout is the command substitution.
  printf '\e]133;ag-%s;D;%s\a' "$__ag_nonce" "$st" >/dev/tty 2>/dev/null \
    || __ag_mark "D;$st" >&2
  # What the front end does not need for its ack is done while the ack
  # travels (a round trip through the front end): the names and traps (the
  # N record, sent with T below, before the prompt is drawn) and the key
  # bindings' check.
  local -a __ag_nrec=()
  __ag_names
  # The ack ends in a NUL, and the keys are read in NUL-separated pieces:
  # a Ctrl-D typed while a command ran (cooked tty) is queued as the line
  # discipline's end-of-file mark, which reads as a NUL here and which
  # `read` would otherwise drop; each piece is its own field of the T
  # record, and the front end puts the Ctrl-D back between them. Without
  # typeahead this is one read. (-t: a front end that never acks must not
  # wedge the shell.)
  local ack=$'\x1d'"$__ag_nonce"$'\x1d' piece= first n=0
  local -a ta=()
  # The first byte is waited for with the timeout, the rest of its piece
  # without: bash's `read -t` polls the terminal before every byte (four
  # system calls a byte instead of one), and with nothing typed meanwhile
  # that rest is the rest of the ack, already queued (the front end writes
  # it whole). The front end acks every D whose record it got (the channel
  # was open): the read ends at the ack's NUL at the latest, or at end of
  # file if the front end has gone.
  if IFS= read -r -s -d '' -n 1 -t 5 first; then
    if [[ -n $first ]]; then
      if [[ -n $__ag_ch ]]; then
        IFS= read -r -s -d '' piece
      else
        IFS= read -r -s -d '' -t 5 piece
      fi
      piece=$first$piece
    fi
    if [[ $piece == *"$ack" ]]; then
      ta+=("${piece%"$ack"}")
    else
      ta+=("$piece")
      while IFS= read -r -s -d '' -t 5 piece; do
        if [[ $piece == *"$ack" ]]; then
          ta+=("${piece%"$ack"}")
          break
        fi
        ta+=("$piece")
        ((++n > 10000)) && break
      done
    fi
  fi
  # N and T in one write (two records).
  [[ -n $__ag_ch ]] || return 0
  printf '%s\0' "@$__ag_nonce" N "${__ag_nrec[@]}" @end "@$__ag_nonce" T "${ta[@]}" @end \
    >&"$__ag_ch"
  exec {__ag_ch}>&-
}

__ag_post() {
  local st=$?
  [[ -n $__ag_ran_pre ]] && st=$__ag_status
  __ag_ran_pre=
  # The user may have set (or unset) histchars: theirs from now on.
  if [[ -z ${histchars+set} ]]; then
    __ag_hc='!^#'
  elif [[ -n $histchars ]]; then
    __ag_hc=$histchars
  fi
  __ag_done=$__ag_n
  # Nothing changed since the last prompt (the usual case): only the mark goes
  # back in PS1. Else __ag_fix_hooks puts everything right. (One test instead
  # of a call: bash copies a function's body at every call, and this runs at
  # every prompt on the way to the D mark.)
  if [[ ${PROMPT_COMMAND[*]@Q} == "${__ag_pc-(none)}" && -n ${PS1+set} && $PS1 == "$__ag_ps1"
        && -z $__ag_ps1_unset && $PS2 == "$__ag_ps2_mark" && $PS0 == *"$__ag_ps0_mark"*
        && ${histchars-x} == "" && ${#__ag_ok[@]} == 1 && ${__ag_ok[1]-} == "$__ag_b"
        && ${PS2@a}${PS0@a}${PROMPT_COMMAND@a} != *x* ]]
  then
    PS1=$__ag_ps1_mark
  else
    __ag_fix_hooks later
  fi
  __ag_report "$st" ""
  return "$st"
}

__ag_rescue() {
  # In a command substitution of PS1 (a subshell): PROMPT_COMMAND did not
  # run. Report like __ag_post; the front end then sends the repair key.
  local st=$?
  __ag_report "$st" 1
  printf '%s' "$__ag_b"
}

__ag_complete() {
  # Bound with bind -x: answer a completion request (written by the front
  # end into $__ag_dir/req as "POINT\nLINE") on the side channel without
  # touching history, $? or the readline buffer.
  local st=$? req point line
  IFS= read -r -d '' req <"$__ag_dir/req"
  point=${req%%$'\n'*}
  line=${req#*$'\n'}
  local left=${line:0:point}
  local -a words=()
  read -r -a words <<<"$left"
  local cur=
  [[ $left == *[^[:space:]] ]] && cur=${words[-1]}
  local -a cands=()
  local -i cword=${#words[@]}
  [[ -n $cur ]] && cword=cword-1
  if ((cword == 0)); then
    if [[ $cur == */* ]]; then
      mapfile -t cands < <(compgen -f -- "$cur")
    else
      mapfile -t cands < <(compgen -A alias -A function -A builtin -A keyword -A command -- "$cur" | sort -u)
    fi
  elif [[ $cur == '$'* ]]; then
    mapfile -t cands < <(compgen -v -- "${cur#\$}" | sed 's/^/$/')
  else
    local cmd=${words[0]} spec=
    spec=$(complete -p -- "$cmd" 2>/dev/null)
    if [[ -z $spec ]] && complete -p -D &>/dev/null; then
      # bash-completion loads specs on demand through the default (-D) spec.
      local dfunc
      dfunc=$(complete -p -D 2>/dev/null)
      dfunc=${dfunc##*-F }
      dfunc=${dfunc%% *}
      if [[ -n $dfunc ]]; then
        local -a COMP_WORDS=("${words[@]}")
        [[ -z $cur ]] && COMP_WORDS+=("")
        local COMP_CWORD=$cword COMP_LINE=$left COMP_POINT=${#left} COMP_TYPE=9 COMP_KEY=9
        "$dfunc" "$cmd" "$cur" "${COMP_WORDS[cword - 1]}" &>/dev/null
        spec=$(complete -p -- "$cmd" 2>/dev/null)
      fi
    fi
    # The spec as words (complete -p prints it quoted for re-use):
    # complete OPTIONS… NAME. -F runs the function the way readline would;
    # every other option means the same to compgen.
    local -a parts=() opts=()
    eval "parts=($spec)" 2>/dev/null
    local func= i
    for ((i = 1; i < ${#parts[@]} - 1; i++)); do
      if [[ ${parts[i]} == -F ]]; then
        func=${parts[i + 1]}
        ((i++))
      elif [[ ${parts[i]} == -[oAGWCXPS] ]]; then
        opts+=("${parts[i]}" "${parts[i + 1]}")
        ((i++))
      else
        opts+=("${parts[i]}")
      fi
    done
    if ((${#opts[@]})); then
      mapfile -t cands < <(compgen "${opts[@]}" -- "$cur" 2>/dev/null)
    fi
    if [[ -n $func ]]; then
      local -a COMP_WORDS=("${words[@]}")
      [[ -z $cur ]] && COMP_WORDS+=("")
      local COMP_CWORD=$cword COMP_LINE=$left COMP_POINT=${#left} COMP_TYPE=9 COMP_KEY=9
      local -a COMPREPLY=()
      "$func" "$cmd" "$cur" "${COMP_WORDS[cword - 1]}" &>/dev/null
      cands+=("${COMPREPLY[@]}")
    fi
    if ((${#cands[@]} == 0)) && [[ -z $spec || $spec == *'-o default'* || $spec == *'-o bashdefault'* ]]; then
      mapfile -t cands < <(compgen -f -- "$cur")
    fi
  fi
  local -a out=() c
  for c in "${cands[@]}"; do
    if [[ -d $c && $c != */ && $cword -gt 0 ]] || [[ $cur == */* && -d $c && $c != */ ]]; then
      out+=("$c/")
    else
      out+=("$c")
    fi
  done
  __ag_record K "$cur" "${out[@]:0:2000}"
  READLINE_LINE=
  READLINE_POINT=0
  return "$st"
}

__ag_state() {
  # Bound with bind -x: answer a state request (written by the front end into
  # $__ag_dir/sreq as NUL-terminated v:NAME, f:NAME, t:) on the side channel
  # as raw fields, without touching history, $? or the readline buffer:
  #   V NAME VALUE | A|M NAME COUNT (KEY VALUE)... | F NAME DEFINITION | T TRAPS
  # Locals are all __ag_*: bash scopes dynamically, and a user's variable
  # named like a local here would otherwise be read as that local.
  local __ag_st=$? __ag_item __ag_n __ag_k __ag_body
  local -a __ag_req=() __ag_out=()
  mapfile -t -d '' __ag_req <"$__ag_dir/sreq" 2>/dev/null
  for __ag_item in "${__ag_req[@]}"; do
    __ag_n=${__ag_item#?:}
    [[ $__ag_n == __ag_* ]] && continue
    case $__ag_item in
      v:PS1)
        # What a line will see (__ag_accept puts the user's prompt back).
        [[ -z $__ag_ps1_unset ]] && __ag_out+=(V PS1 "$__ag_ps1")
        ;;
      v:*)
        # (no `declare -p NAME` to test that it is set: a redirection per
        # name is most of this handler's time; an unset name has no attributes
        # and is not -v)
        local -n __ag_r=$__ag_n
        case ${__ag_r@a} in
          *A*|*a*)
            if [[ ${__ag_r@a} == *A* ]]; then
              __ag_out+=(M "$__ag_n" "${#__ag_r[@]}")
            else
              __ag_out+=(A "$__ag_n" "${#__ag_r[@]}")
            fi
            for __ag_k in "${!__ag_r[@]}"; do __ag_out+=("$__ag_k" "${__ag_r[$__ag_k]}"); done
            ;;
          *) [[ -v __ag_r ]] && __ag_out+=(V "$__ag_n" "$__ag_r") ;;
        esac
        unset -n __ag_r
        ;;
      f:*)
        declare -f -- "$__ag_n" >"$__ag_dir/fbody" 2>/dev/null || continue
        __ag_body=
        IFS= read -r -d '' __ag_body <"$__ag_dir/fbody"
        __ag_out+=(F "$__ag_n" "$__ag_body")
        ;;
      t:)
        trap -p >"$__ag_dir/fbody" 2>/dev/null
        __ag_body=
        IFS= read -r -d '' __ag_body <"$__ag_dir/fbody"
        __ag_out+=(T "$__ag_body")
        ;;
    esac
  done
  __ag_record S "${__ag_out[@]}"
  READLINE_LINE=
  READLINE_POINT=0
  # $1 is the caller's $_ (the binding passes it): the last word of this
  # function's last command becomes $_ again for the user's next line.
  __ag_setstatus "$__ag_st" "$1"
}

__ag_hist() {
  # Bound with bind -x: history-expand the line in $__ag_dir/hreq with bash's
  # own history (history -p, which stores nothing) and answer on the side
  # channel: Y STATUS EXPANDED ERROR. $1 is the caller's $_ (kept, as in
  # __ag_state).
  local __ag_st=$? __ag_line= __ag_out= __ag_err= __ag_rc
  IFS= read -r -d '' __ag_line <"$__ag_dir/hreq"
  # `history -p` deletes the last history entry first when it was added by the
  # line just read (it takes it for the `history -p` line itself): from a
  # bind -x handler that would be the user's last command. `history -s` of
  # that same entry replaces it and marks the last line as pushed, which -p
  # respects; if it was not replaced but added (the last line was not saved,
  # e.g. HISTCONTROL=ignorespace), the copy goes again.
  local __ag_last= __ag_n0=$HISTCMD HISTTIMEFORMAT=
  history 1 >"$__ag_dir/hout" 2>/dev/null
  IFS= read -r -d '' __ag_last <"$__ag_dir/hout"
  if [[ $__ag_last =~ ^\ *[0-9]+[*\ ]\ (.*)$ ]]; then
    __ag_last=${BASH_REMATCH[1]%$'\n'}
    history -s -- "$__ag_last"
    ((HISTCMD > __ag_n0)) && history -d -1
  fi
  histchars=$__ag_hc
  history -p -- "$__ag_line" >"$__ag_dir/hout" 2>"$__ag_dir/herr"
  __ag_rc=$?
  histchars=
  IFS= read -r -d '' __ag_out <"$__ag_dir/hout"
  IFS= read -r -d '' __ag_err <"$__ag_dir/herr"
  __ag_record Y "$__ag_rc" "$__ag_out" "$__ag_err"
  READLINE_LINE=
  READLINE_POINT=0
  __ag_setstatus "$__ag_st" "$1"
}

__ag_fced() {
  # fc's editor when the front end rewrote an editing `fc` (history_expand.py):
  # run the user's editor, keep what was written for the prompt, and give fc
  # an empty file, so nothing edited runs before it is judged.
  local __ag_ed=${__ag_fced_ed:-${FCEDIT:-${EDITOR:-vi}}} __ag_text= __ag_st
  $__ag_ed "$1"
  __ag_st=$?
  IFS= read -r -d '' __ag_text <"$1"
  printf '%s' "$__ag_text" >"$__ag_dir/fced"
  : >"$1"
  return "$__ag_st"
}

__ag_interrupted() {
  # Sent by the front end when Ctrl-C abandons a typed line: $? is 130, as
  # after readline's own ^C. It leaves no trace in the history.
  local last
  last=$(HISTTIMEFORMAT= history 1 2>/dev/null)
  [[ $last == *" __ag_interrupted" ]] && history -d -1 2>/dev/null
  return 130
}

__ag_repair() {
  # Bound with bind -x: the front end saw the rescue path report (PROMPT_COMMAND
  # was unset or replaced): reinstall the hooks.
  local st=$?
  __ag_fix_hooks
  __ag_record R "$st"
  return "$st"
}

__ag_fix_hooks
# Lines arrive as one bracketed paste: readline must treat it as text.
bind 'set enable-bracketed-paste on' 2>/dev/null
bind 'set enable-active-region off' 2>/dev/null
# Readonly from here on: a redefined hook or a changed mark would run code
# that was never judged (at every prompt, or on Tab).
declare -fr __ag_mark __ag_record __ag_setstatus __ag_pre __ag_fix_hooks __ag_report \
  __ag_post __ag_rescue __ag_complete __ag_names __ag_state __ag_hist __ag_fced \
  __ag_repair __ag_accept __ag_bind
declare -r __ag_nonce __ag_dir __ag_b __ag_c __ag_p __ag_ps1_mark __ag_ps2_mark \
  __ag_ps0_mark __ag_installed=1
