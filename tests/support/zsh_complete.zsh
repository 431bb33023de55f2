# Completes a command line in a real interactive zsh (compinit, the completion widget) inside a
# pseudo-terminal, and prints the matches the completion functions offered, one a line.
# usage: zsh -f zsh_complete.zsh FPATH_DIR LINE    (compadd is wrapped to print what it adds)
zmodload zsh/zpty
zpty z zsh -f -i
zpty -w z "PS1=''; fpath=(${(q)1} \$fpath); autoload -U compinit; compinit -u -D"
zpty -w z 'compadd() { local -a m; builtin compadd -O m "$@"; (( $#m )) && print -rl -- ${^m/#/MAT""CH:}; builtin compadd "$@"; }'
zpty -w z 'print REA""DY'
# Type only once zle reads the terminal (it turns bracketed paste on): before that the tty's own
# line editing would take the Ctrl-U below.
ready=0
for i in {1..200}; do
  zpty -r -t z out || { sleep 0.05; continue; }
  [[ $out == *READY* ]] && ready=1
  (( ready )) && [[ $out == *$'\e[?2004h'* ]] && break
done
zpty -w -n z "$2"$'\t'
zpty -w z $'\x15print DO""NE'
for i in {1..400}; do
  zpty -r -t z out || { sleep 0.05; continue; }
  print -rn -- "$out"
  [[ $out == *DONE* ]] && break
done | grep -ao 'MATCH:[^[:cntrl:]]*' | sed 's/^MATCH://' | sort -u
zpty -d z
