# Services (issue 6): dropbear for the intrinsic sshd and an ssh client for its login test,
# useradd (passwd) for the throwaway login user, terminado for the web-terminal fallback
# (ttyd itself is in no registry these machines reach).
apt_install dropbear-bin openssh-client passwd tmux
python3 -m pip install -q --root-user-action=ignore "terminado>=0.18"
