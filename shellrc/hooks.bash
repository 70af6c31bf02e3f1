# attyguard's hooks (sourced last by attyguard.bash, and again to repair them).
# Needs: __ag_nonce, __ag_dir. Idempotent: sourcing it twice changes nothing.

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
# PS1 holds only the mark; the user's prompt is __ag_ps1. Tools save PS1,
# prefix it and later restore it (venv's activate/deactivate, conda, nvm,
# starship): each user prompt gets its own numbered mark (${__ag_v[K]}
# expands to nothing), so a saved mark later put back, or a mark with text
# around it, maps back to the prompt it stood for (__ag_ps1s[K]).
__ag_ps1_base='\[${__ag_ok[__ag_done==__ag_n]:-$(__ag_rescue)}'
__ag_ps1_k=${__ag_ps1_k:-0}
[[ -n ${__ag_ps1s+set} ]] || __ag_ps1s=()
__ag_ps1_mark=$__ag_ps1_base'${__ag_v['$__ag_ps1_k']}\]'
__ag_ps2_mark='\['"$__ag_p"'\]'
__ag_ps0_mark='${__ag_ok[__ag_n+=1]::0}'"$__ag_c"

if [[ -z ${__ag_ps1+set} ]]; then
  __ag_ps1=${PS1-'\s-\v\$ '}
  __ag_ps2=${PS2-'> '}
fi
__ag_ran_pre=

__ag_record() {
  # One write per record; the FIFO reader is always open (O_RDWR) on the other end.
  printf '%s\0' "@$__ag_nonce" "$@" @end >"$__ag_dir/ch" 2>/dev/null
}

__ag_setstatus() { return "$1"; }

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
  # (bash-preexec, starship, direnv…) rewrote PROMPT_COMMAND.
  local -a kept=()
  local item
  for item in "${PROMPT_COMMAND[@]}"; do
    [[ $item == __ag_pre || $item == __ag_post || -z $item ]] || kept+=("$item")
  done
  PROMPT_COMMAND=(__ag_pre "${kept[@]}" __ag_post)
  # The user may have set PS1/PS2 at the prompt or in a PROMPT_COMMAND item.
  __ag_ok=([1]="$__ag_b")
  if [[ $PS1 != "$__ag_ps1_mark" ]]; then
    __ag_user_ps1
  fi
  if [[ $PS2 != "$__ag_ps2_mark" ]]; then
    __ag_ps2=${PS2//"$__ag_ps2_mark"/"$__ag_ps2"}
  fi
  PS1=$__ag_ps1_mark
  PS2=$__ag_ps2_mark
  [[ $PS0 == *"$__ag_ps0_mark"* ]] || PS0=$__ag_ps0_mark${PS0//"$__ag_ps0_mark"/}
  __ag_done=$__ag_n
  # Child shells must not inherit the hidden prompts.
  export -n PS1 PS2 PS0 PROMPT_COMMAND
}

__ag_user_ps1() {
  # PS1 was set since the last prompt: every mark in it stands for the user
  # prompt it was made for (quoted replacement: no patsub_replacement `&`).
  local new=$PS1 k mark
  __ag_ps1s[__ag_ps1_k]=$__ag_ps1
  if [[ $new == *"$__ag_ps1_base"* ]]; then
    for k in "${!__ag_ps1s[@]}"; do
      mark=$__ag_ps1_base'${__ag_v['$k']}\]'
      new=${new//"$mark"/"${__ag_ps1s[k]}"}
    done
  fi
  __ag_ps1=$new
  __ag_ps1_k=$((__ag_ps1_k + 1))
  __ag_ps1s[__ag_ps1_k]=$new
  __ag_ps1_mark=$__ag_ps1_base'${__ag_v['$__ag_ps1_k']}\]'
}

__ag_report() {
  # $1 status, $2 "1" if reported by the rescue path. Record, D mark, then
  # hand typeahead back: keys typed while the command ran are still queued
  # on the tty; read them up to the front end's ack (GS nonce GS NUL) so they
  # are classified in the prompt buffer instead of reaching readline.
  local st=$1 ps1 ps2
  __ag_setstatus "$st"
  ps1=${__ag_ps1@P}
  __ag_setstatus "$st"
  ps2=${__ag_ps2@P}
  local mode=emacs
  [[ -o vi ]] && mode=vi
  __ag_record D "$st" "$PWD" "$ps1" "$ps2" "$2" "$mode"
  # To the terminal itself: stdout/stderr may be redirected (exec 2>log), and
  # in the rescue path stdout is the command substitution.
  __ag_mark "D;$st" >/dev/tty 2>/dev/null || __ag_mark "D;$st" >&2
  # The ack ends in a NUL, and the keys are read in NUL-separated pieces:
  # a Ctrl-D typed while a command ran (cooked tty) is queued as the line
  # discipline's end-of-file mark, which reads as a NUL here and which
  # `read` would otherwise drop; each piece is its own field of the T
  # record, and the front end puts the Ctrl-D back between them. Without
  # typeahead this is one read. (-t: a front end that never acks must not
  # wedge the shell.)
  local ack=$'\x1d'"$__ag_nonce"$'\x1d' piece n=0
  local -a ta=()
  while IFS= read -r -s -d '' -t 5 piece; do
    if [[ $piece == *"$ack" ]]; then
      ta+=("${piece%"$ack"}")
      break
    fi
    ta+=("$piece")
    ((++n > 10000)) && break
  done
  __ag_record T "${ta[@]}"
}

__ag_post() {
  local st=$?
  [[ -n $__ag_ran_pre ]] && st=$__ag_status
  __ag_ran_pre=
  __ag_done=$__ag_n
  __ag_fix_hooks
  __ag_report "$st" ""
  __ag_setstatus "$st"
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
# In every editing mode's keymap, so `set -o vi` later keeps them working.
for __ag_km in emacs vi-insert vi-command; do
  bind -m "$__ag_km" -x '"\e[57701~": __ag_complete' 2>/dev/null
  bind -m "$__ag_km" -x '"\e[57702~": __ag_repair' 2>/dev/null
done
unset __ag_km
