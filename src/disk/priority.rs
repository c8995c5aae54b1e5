//! Lowering the calling thread's CPU and I/O priority, so that walking layers yields to the
//! containers' own work.

/// `ioprio_set(2)`: `IOPRIO_WHO_PROCESS` with id 0 names the calling thread.
const IOPRIO_WHO_PROCESS: libc::c_int = 1;
/// The idle class: the thread gets disk time only when no one else wants it. Since Linux
/// 2.6.25 it needs no privilege.
const IOPRIO_CLASS_IDLE: libc::c_int = 3;
const IOPRIO_CLASS_SHIFT: libc::c_int = 13;
/// The lowest CPU priority; lowering one's own priority needs no privilege.
const NICE_LOWEST: libc::c_int = 19;

/// Puts the calling thread in the idle I/O class and at the lowest CPU priority. On Linux
/// both apply to the calling thread only, not to the whole process (setpriority(2), "BUGS":
/// the nice value is per thread under NPTL). A failure only makes walks less polite, so it is
/// logged at debug level and otherwise ignored.
pub fn lower_own_priority() {
    // SAFETY: ioprio_set takes three integers and touches no memory of ours.
    let result = unsafe {
        libc::syscall(
            libc::SYS_ioprio_set,
            IOPRIO_WHO_PROCESS,
            0,
            IOPRIO_CLASS_IDLE << IOPRIO_CLASS_SHIFT,
        )
    };
    if result != 0 {
        let error = std::io::Error::last_os_error();
        tracing::debug!(%error, "cannot set the disk walker's I/O priority to idle");
    }
    // SAFETY: setpriority takes integers and touches no memory of ours.
    let result = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, NICE_LOWEST) };
    if result != 0 {
        let error = std::io::Error::last_os_error();
        tracing::debug!(%error, "cannot lower the disk walker's CPU priority");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lowers_only_the_calling_thread() {
        let ioprio_get = || {
            // SAFETY: ioprio_get takes two integers and touches no memory of ours.
            unsafe { libc::syscall(libc::SYS_ioprio_get, IOPRIO_WHO_PROCESS, 0) }
        };
        let nice = || {
            // SAFETY: getpriority takes integers and touches no memory of ours.
            unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) }
        };
        let before = (ioprio_get(), nice());

        let lowered = std::thread::spawn(move || {
            lower_own_priority();
            (ioprio_get(), nice())
        })
        .join()
        .unwrap();

        assert_eq!(
            lowered,
            (
                libc::c_long::from(IOPRIO_CLASS_IDLE << IOPRIO_CLASS_SHIFT),
                NICE_LOWEST
            )
        );
        assert_eq!((ioprio_get(), nice()), before);
    }
}
