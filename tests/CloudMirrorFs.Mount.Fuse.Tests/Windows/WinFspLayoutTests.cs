using System.Runtime.InteropServices;
using CloudMirrorFs.Mount.Windows;

namespace CloudMirrorFs.Mount.Tests.Windows;

/// <summary>
/// Pins our WinFsp structures to the numbers derived from WinFsp's own headers for 64-bit Windows (_WIN64: x64 and
/// ARM64, where WinFsp avoids <c>long</c>, so LLP64 changes nothing). No WinFsp or MSVC here, so each number is
/// derived by hand next to it, citing header and field; a wrong slot in the operations table crashes the process.
/// Headers: inc/fuse3/fuse.h (fuse3_operations), inc/fuse3/fuse_common.h (fuse3_file_info, fuse3_conn_info),
/// inc/fuse/winfsp_fuse.h (fuse_* types, fuse_stat, fuse_statvfs, fuse_timespec, fsp_fuse_env), inc/fuse/fuse_opt.h
/// (fuse_args).
/// </summary>
[TestClass]
public sealed class WinFspLayoutTests
{
    // inc/fuse3/fuse.h, struct fuse3_operations, in declaration order: every slot is a function pointer (8 bytes),
    // so slot i is at 8 * i.
    private static readonly string[] OperationSlots =
    [
        "GetAttr", // 0 getattr(path, struct fuse_stat *, struct fuse3_file_info *)
        "ReadLink", // 1 readlink(path, char *buf, size_t size)
        "MkNod", // 2 mknod(path, fuse_mode_t, fuse_dev_t)
        "MkDir", // 3 mkdir(path, fuse_mode_t)
        "Unlink", // 4 unlink(path)
        "RmDir", // 5 rmdir(path)
        "Symlink", // 6 symlink(dstpath, srcpath)
        "Rename", // 7 rename(oldpath, newpath, unsigned int flags)
        "Link", // 8 link (not supported by WinFsp)
        "Chmod", // 9 chmod(path, fuse_mode_t, fi)
        "Chown", // 10 chown(path, fuse_uid_t, fuse_gid_t, fi)
        "Truncate", // 11 truncate(path, fuse_off_t, fi)
        "Open", // 12 open(path, fi)
        "Read", // 13 read(path, char *buf, size_t, fuse_off_t, fi)
        "Write", // 14 write(path, const char *buf, size_t, fuse_off_t, fi)
        "StatFs", // 15 statfs(path, struct fuse_statvfs *)
        "Flush", // 16 flush(path, fi)
        "Release", // 17 release(path, fi)
        "Fsync", // 18 fsync(path, int datasync, fi)
        "SetXattr", // 19
        "GetXattr", // 20
        "ListXattr", // 21
        "RemoveXattr", // 22
        "OpenDir", // 23 opendir(path, fi)
        "ReadDir", // 24 readdir(path, void *buf, fuse3_fill_dir_t, fuse_off_t, fi, enum fuse3_readdir_flags)
        "ReleaseDir", // 25 releasedir(path, fi)
        "FsyncDir", // 26 fsyncdir(path, int datasync, fi)
        "Init", // 27 void *init(struct fuse3_conn_info *, struct fuse3_config *)
        "Destroy", // 28 void destroy(void *)
        "Access", // 29 (not supported by WinFsp)
        "Create", // 30 create(path, fuse_mode_t, fi)
        "Lock", // 31 (not supported by WinFsp)
        "Utimens", // 32 utimens(path, const struct fuse_timespec tv[2], fi)
        "Bmap", // 33
        "Ioctl", // 34
        "Poll", // 35
        "WriteBuf", // 36
        "ReadBuf", // 37
        "Flock", // 38
        "Fallocate", // 39
    ];

    // (what, C# type, C# field or null for the size, the number derived from the header)
    private static readonly (string What, Type Type, string? Field, int Expected)[] Checks =
    [
        // struct fuse3_operations: 40 function pointers.
        ("sizeof(struct fuse3_operations) = 40 * 8", typeof(Fuse3Operations), null, 320),

        // inc/fuse3/fuse_common.h, struct fuse3_file_info: int flags @0; then unsigned int bit fields writepage,
        // direct_io, keep_cache, flush, nonseekable, flock_release (6 bits) and padding:27 = 33 bits: padding does not
        // fit the 26 bits left in the first unit (@4), so it opens a second one (@8) (MSVC and GCC alike);
        // uintptr_t fh @16 (8-aligned); uint64_t lock_owner @24; uint32_t poll_events @32; size rounded to 8 = 40.
        ("sizeof(struct fuse3_file_info)", typeof(Fuse3FileInfo), null, 40),
        ("offsetof(fuse3_file_info, flags)", typeof(Fuse3FileInfo), "Flags", 0),
        ("offsetof(fuse3_file_info, <bit fields>)", typeof(Fuse3FileInfo), "Bits", 4),
        ("offsetof(fuse3_file_info, fh)", typeof(Fuse3FileInfo), "Fh", 16),
        ("offsetof(fuse3_file_info, lock_owner)", typeof(Fuse3FileInfo), "LockOwner", 24),
        ("offsetof(fuse3_file_info, poll_events)", typeof(Fuse3FileInfo), "PollEvents", 32),

        // inc/fuse/winfsp_fuse.h (_WIN64): struct fuse_timespec { int64_t tv_sec; int64_t tv_nsec; }.
        ("sizeof(struct fuse_timespec)", typeof(FuseTimespec), null, 16),

        // inc/fuse/winfsp_fuse.h, FSP_FUSE_STAT_FIELD_DEFN with _WIN64's types: fuse_dev_t st_dev (uint32) @0;
        // fuse_ino_t st_ino (uint64) @8; fuse_mode_t st_mode (uint32) @16; fuse_nlink_t st_nlink (uint16) @20;
        // fuse_uid_t st_uid (uint32) @24; fuse_gid_t st_gid @28; fuse_dev_t st_rdev @32; fuse_off_t st_size (int64)
        // @40; st_atim @48, st_mtim @64, st_ctim @80 (16 each); fuse_blksize_t st_blksize (int32) @96;
        // fuse_blkcnt_t st_blocks (int64) @104; st_birthtim @112; size 128 (fuse_stat_ex, unused, adds 32).
        ("sizeof(struct fuse_stat)", typeof(WinFspStat), null, 128),
        ("offsetof(fuse_stat, st_dev)", typeof(WinFspStat), "Dev", 0),
        ("offsetof(fuse_stat, st_ino)", typeof(WinFspStat), "Ino", 8),
        ("offsetof(fuse_stat, st_mode)", typeof(WinFspStat), "Mode", 16),
        ("offsetof(fuse_stat, st_nlink)", typeof(WinFspStat), "Nlink", 20),
        ("offsetof(fuse_stat, st_uid)", typeof(WinFspStat), "Uid", 24),
        ("offsetof(fuse_stat, st_gid)", typeof(WinFspStat), "Gid", 28),
        ("offsetof(fuse_stat, st_rdev)", typeof(WinFspStat), "Rdev", 32),
        ("offsetof(fuse_stat, st_size)", typeof(WinFspStat), "Size", 40),
        ("offsetof(fuse_stat, st_atim)", typeof(WinFspStat), "Atim", 48),
        ("offsetof(fuse_stat, st_mtim)", typeof(WinFspStat), "Mtim", 64),
        ("offsetof(fuse_stat, st_ctim)", typeof(WinFspStat), "Ctim", 80),
        ("offsetof(fuse_stat, st_blksize)", typeof(WinFspStat), "BlkSize", 96),
        ("offsetof(fuse_stat, st_blocks)", typeof(WinFspStat), "Blocks", 104),
        ("offsetof(fuse_stat, st_birthtim)", typeof(WinFspStat), "Birthtim", 112),

        // inc/fuse/winfsp_fuse.h, struct fuse_statvfs (_WIN64): uint64_t f_bsize, f_frsize; fuse_fsblkcnt_t (uint64)
        // f_blocks, f_bfree, f_bavail; fuse_fsfilcnt_t (uint64) f_files, f_ffree, f_favail; uint64_t f_fsid, f_flag,
        // f_namemax: eleven 8-byte fields.
        ("sizeof(struct fuse_statvfs)", typeof(WinFspStatVfs), null, 88),
        ("offsetof(fuse_statvfs, f_bsize)", typeof(WinFspStatVfs), "BlockSize", 0),
        ("offsetof(fuse_statvfs, f_frsize)", typeof(WinFspStatVfs), "FragmentSize", 8),
        ("offsetof(fuse_statvfs, f_blocks)", typeof(WinFspStatVfs), "Blocks", 16),
        ("offsetof(fuse_statvfs, f_bfree)", typeof(WinFspStatVfs), "BlocksFree", 24),
        ("offsetof(fuse_statvfs, f_bavail)", typeof(WinFspStatVfs), "BlocksAvailable", 32),
        ("offsetof(fuse_statvfs, f_files)", typeof(WinFspStatVfs), "Files", 40),
        ("offsetof(fuse_statvfs, f_ffree)", typeof(WinFspStatVfs), "FilesFree", 48),
        ("offsetof(fuse_statvfs, f_favail)", typeof(WinFspStatVfs), "FilesAvailable", 56),
        ("offsetof(fuse_statvfs, f_fsid)", typeof(WinFspStatVfs), "FsId", 64),
        ("offsetof(fuse_statvfs, f_flag)", typeof(WinFspStatVfs), "Flag", 72),
        ("offsetof(fuse_statvfs, f_namemax)", typeof(WinFspStatVfs), "NameMax", 80),

        // inc/fuse3/fuse_common.h, struct fuse3_conn_info: unsigned proto_major, proto_minor, max_write, max_read,
        // max_readahead, capable, want, max_background, congestion_threshold, time_gran, reserved[22]: 32 * 4.
        ("sizeof(struct fuse3_conn_info)", typeof(Fuse3ConnInfo), null, 128),
        ("offsetof(fuse3_conn_info, capable)", typeof(Fuse3ConnInfo), "Capable", 20),
        ("offsetof(fuse3_conn_info, want)", typeof(Fuse3ConnInfo), "Want", 24),
        ("offsetof(fuse3_conn_info, time_gran)", typeof(Fuse3ConnInfo), "TimeGran", 36),

        // inc/fuse/winfsp_fuse.h, struct fsp_fuse_env: unsigned environment @0 (then 4 bytes of padding); memalloc
        // @8, memfree @16, daemonize @24, set_signal_handlers @32, conv_to_win_path @40, winpid_to_pid @48,
        // reserved[2] @56 and @64: 72.
        ("sizeof(struct fsp_fuse_env)", typeof(FspFuseEnv), null, 72),
        ("offsetof(fsp_fuse_env, environment)", typeof(FspFuseEnv), "Environment", 0),
        ("offsetof(fsp_fuse_env, memalloc)", typeof(FspFuseEnv), "MemAlloc", 8),
        ("offsetof(fsp_fuse_env, memfree)", typeof(FspFuseEnv), "MemFree", 16),
        ("offsetof(fsp_fuse_env, daemonize)", typeof(FspFuseEnv), "Daemonize", 24),
        ("offsetof(fsp_fuse_env, set_signal_handlers)", typeof(FspFuseEnv), "SetSignalHandlers", 32),
        ("offsetof(fsp_fuse_env, conv_to_win_path)", typeof(FspFuseEnv), "ConvToWinPath", 40),
        ("offsetof(fsp_fuse_env, winpid_to_pid)", typeof(FspFuseEnv), "WinpidToPid", 48),
        ("offsetof(fsp_fuse_env, reserved[0])", typeof(FspFuseEnv), "Reserved0", 56),
        ("offsetof(fsp_fuse_env, reserved[1])", typeof(FspFuseEnv), "Reserved1", 64),

        // inc/fuse/fuse_opt.h, struct fuse_args { int argc; char **argv; int allocated; }: 0, 8, 16; size 24.
        ("sizeof(struct fuse_args)", typeof(WinFspArgs), null, 24),
        ("offsetof(fuse_args, argc)", typeof(WinFspArgs), "Argc", 0),
        ("offsetof(fuse_args, argv)", typeof(WinFspArgs), "Argv", 8),
        ("offsetof(fuse_args, allocated)", typeof(WinFspArgs), "Allocated", 16),
    ];

    [TestMethod]
    public void Structures_MatchTheSizesAndOffsetsOfWinFspsHeaders()
    {
        Assert.AreEqual(8, IntPtr.Size, "the layouts are _WIN64's: the test and the binding run in 64-bit processes");
        var wrong = new List<string>();
        foreach ((string what, Type type, string? field, int expected) in Checks)
        {
            long ours = field is null ? Marshal.SizeOf(type) : Marshal.OffsetOf(type, field).ToInt64();
            if (ours != expected)
            {
                wrong.Add($"{what}: WinFsp {expected}, ours {ours}");
            }
        }
        Assert.AreEqual(0, wrong.Count, string.Join("\n", wrong));
    }

    [TestMethod]
    public void OperationsTable_HasEverySlotOfFuse3OperationsInOrder()
    {
        var fields = typeof(Fuse3Operations).GetFields();
        Assert.AreEqual(OperationSlots.Length, fields.Length, "fuse3_operations has 40 slots");
        for (int i = 0; i < OperationSlots.Length; i++)
        {
            Assert.AreEqual(8L * i, Marshal.OffsetOf<Fuse3Operations>(OperationSlots[i]).ToInt64(), $"slot {i} ({OperationSlots[i]})");
        }
    }

    [TestMethod]
    public void Constants_MatchWinFspsHeaders()
    {
        (string What, ulong Ours, ulong WinFsp)[] constants =
        [
            // inc/fuse3/fuse_common.h: FUSE_CAP_READDIRPLUS (1 << 13), FUSE_CAP_CASE_INSENSITIVE (1 << 29).
            ("FUSE_CAP_READDIRPLUS", Fuse3ConnInfo.CapReaddirPlus, 1UL << 13),
            ("FSP_FUSE_CAP_CASE_INSENSITIVE", Fuse3ConnInfo.CapCaseInsensitive, 1UL << 29),
            // inc/fuse/winfsp_fuse.h: FSP_FUSE_ENV_INIT's environment for a native Windows program is 'W' (87).
            ("fsp_fuse_env.environment", FspFuseEnv.Windows, 87),
            // src/dll/fuse/fuse_intf.c: fi.fh = -1 when nothing was opened (fh is a uintptr_t).
            ("no file handle", Fuse3FileInfo.NoHandle, ulong.MaxValue),
        ];
        foreach ((string what, ulong ours, ulong winFsp) in constants)
        {
            Assert.AreEqual(winFsp, ours, what);
        }
    }
}
