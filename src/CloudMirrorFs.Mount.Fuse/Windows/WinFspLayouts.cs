using System.Runtime.InteropServices;

namespace CloudMirrorFs.Mount.Windows;

// The WinFsp FUSE 3 structures (64-bit Windows: x64 and ARM64, _WIN64 in WinFsp's headers) our binding touches,
// slot for slot. WinFsp defines its own fuse_* types for Windows (inc/fuse/winfsp_fuse.h): they are not Linux's
// (fuse_stat has a 16-bit st_nlink and a birth time, fuse_mode_t and fuse_dev_t are 32-bit, fuse_off_t is int64,
// fuse_statvfs is all 64-bit fields). One wrong slot crashes the process, so
// tests/CloudMirrorFs.Mount.Fuse.Tests/Windows/WinFspLayoutTests pins every size and offset below to the numbers
// derived from WinFsp's headers (the derivation is written next to each number there).

/// <summary>
/// struct fuse3_operations (inc/fuse3/fuse.h): 40 function pointers in declaration order; the high-level API, so
/// every operation takes a path ("/a/b", UTF-8) and returns 0 or a negative errno (WinFsp's MSVCRT values).
/// </summary>
[StructLayout(LayoutKind.Sequential)]
internal struct Fuse3Operations
{
    public nint GetAttr, ReadLink, MkNod, MkDir, Unlink, RmDir, Symlink, Rename, Link, Chmod, Chown, Truncate, Open, Read,
        Write, StatFs, Flush, Release, Fsync, SetXattr, GetXattr, ListXattr, RemoveXattr, OpenDir, ReadDir, ReleaseDir,
        FsyncDir, Init, Destroy, Access, Create, Lock, Utimens, Bmap, Ioctl, Poll, WriteBuf, ReadBuf, Flock, Fallocate;
}

/// <summary>
/// struct fuse3_file_info (inc/fuse3/fuse_common.h, 40 bytes). Its bit fields (six flags, then padding:27) need 33
/// bits, so they take two 32-bit units (neither MSVC nor GCC lets a bit field straddle units): fh lands at 16.
/// </summary>
[StructLayout(LayoutKind.Explicit, Size = 40)]
internal struct Fuse3FileInfo
{
    /// <summary>The fh WinFsp passes when nothing was opened (reparse points; (UINT_PTR)-1 in fuse_intf.c).</summary>
    public const ulong NoHandle = ulong.MaxValue;

    [FieldOffset(0)] public int Flags;
    [FieldOffset(4)] public uint Bits;
    [FieldOffset(16)] public ulong Fh;
    [FieldOffset(24)] public ulong LockOwner;
    [FieldOffset(32)] public uint PollEvents;
}

/// <summary>struct fuse_timespec on _WIN64 (inc/fuse/winfsp_fuse.h): two int64.</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct FuseTimespec
{
    public long Seconds;
    public long Nanoseconds;
}

/// <summary>struct fuse_stat on _WIN64 (inc/fuse/winfsp_fuse.h, FSP_FUSE_STAT_FIELD_DEFN; 128 bytes, no FSP_FUSE_USE_STAT_EX).</summary>
[StructLayout(LayoutKind.Explicit, Size = 128)]
internal struct WinFspStat
{
    [FieldOffset(0)] public uint Dev;
    [FieldOffset(8)] public ulong Ino;
    [FieldOffset(16)] public uint Mode;
    [FieldOffset(20)] public ushort Nlink;
    [FieldOffset(24)] public uint Uid;
    [FieldOffset(28)] public uint Gid;
    [FieldOffset(32)] public uint Rdev;
    [FieldOffset(40)] public long Size;
    [FieldOffset(48)] public FuseTimespec Atim;
    [FieldOffset(64)] public FuseTimespec Mtim;
    [FieldOffset(80)] public FuseTimespec Ctim;
    [FieldOffset(96)] public int BlkSize;
    [FieldOffset(104)] public long Blocks;
    [FieldOffset(112)] public FuseTimespec Birthtim;
}

/// <summary>struct fuse_statvfs on _WIN64 (inc/fuse/winfsp_fuse.h): eleven 64-bit fields, 88 bytes.</summary>
[StructLayout(LayoutKind.Explicit, Size = 88)]
internal struct WinFspStatVfs
{
    [FieldOffset(0)] public ulong BlockSize;
    [FieldOffset(8)] public ulong FragmentSize;
    [FieldOffset(16)] public ulong Blocks;
    [FieldOffset(24)] public ulong BlocksFree;
    [FieldOffset(32)] public ulong BlocksAvailable;
    [FieldOffset(40)] public ulong Files;
    [FieldOffset(48)] public ulong FilesFree;
    [FieldOffset(56)] public ulong FilesAvailable;
    [FieldOffset(64)] public ulong FsId;
    [FieldOffset(72)] public ulong Flag;
    [FieldOffset(80)] public ulong NameMax;
}

/// <summary>struct fuse3_conn_info (inc/fuse3/fuse_common.h): ten unsigned, then unsigned reserved[22]; 128 bytes.</summary>
[StructLayout(LayoutKind.Explicit, Size = 128)]
internal struct Fuse3ConnInfo
{
    /// <summary>FUSE_CAP_READDIRPLUS: fill directory listings with attributes (we do not: entries carry no sizes).</summary>
    public const uint CapReaddirPlus = 1u << 13;

    /// <summary>FSP_FUSE_CAP_CASE_INSENSITIVE (= FUSE_CAP_CASE_INSENSITIVE): WinFsp makes the volume case-insensitive.</summary>
    public const uint CapCaseInsensitive = 1u << 29;

    [FieldOffset(0)] public uint ProtoMajor;
    [FieldOffset(4)] public uint ProtoMinor;
    [FieldOffset(8)] public uint MaxWrite;
    [FieldOffset(12)] public uint MaxRead;
    [FieldOffset(16)] public uint MaxReadahead;
    [FieldOffset(20)] public uint Capable;
    [FieldOffset(24)] public uint Want;
    [FieldOffset(28)] public uint MaxBackground;
    [FieldOffset(32)] public uint CongestionThreshold;
    [FieldOffset(36)] public uint TimeGran;
}

/// <summary>
/// struct fsp_fuse_env (inc/fuse/winfsp_fuse.h, 72 bytes). Every fsp_fuse3_* export takes it first: the header's
/// fuse3_* functions are inline wrappers passing a static one built by FSP_FUSE_ENV_INIT; we build ours.
/// </summary>
[StructLayout(LayoutKind.Explicit, Size = 72)]
internal struct FspFuseEnv
{
    /// <summary>'W': a native Windows program (MSVCRT errno values, WinFsp's fuse_stat); 'C' would be Cygwin.</summary>
    public const uint Windows = 'W';

    [FieldOffset(0)] public uint Environment;
    [FieldOffset(8)] public nint MemAlloc;
    [FieldOffset(16)] public nint MemFree;
    [FieldOffset(24)] public nint Daemonize;
    [FieldOffset(32)] public nint SetSignalHandlers;
    [FieldOffset(40)] public nint ConvToWinPath;
    [FieldOffset(48)] public nint WinpidToPid;
    [FieldOffset(56)] public nint Reserved0;
    [FieldOffset(64)] public nint Reserved1;
}

/// <summary>struct fuse_args (inc/fuse/fuse_opt.h, 24 bytes).</summary>
[StructLayout(LayoutKind.Explicit, Size = 24)]
internal unsafe struct WinFspArgs
{
    [FieldOffset(0)] public int Argc;
    [FieldOffset(8)] public byte** Argv;
    [FieldOffset(16)] public int Allocated;
}
