using System.Runtime.InteropServices;

namespace CloudMirrorFs.Mount.Linux;

// The libfuse 3.14 (x86-64 Linux) structures our binding touches, slot for slot. One wrong slot crashes the process,
// so tests/CloudMirrorFs.Mount.Fuse.Tests/LinuxLayoutTests compiles a C program against /usr/include/fuse3 and
// compares every offset and size below with what the C compiler says.

/// <summary>struct fuse_lowlevel_ops: 44 function pointers in declaration order (FUSE_USE_VERSION 314).</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct FuseLowLevelOps
{
    public nint Init, Destroy, Lookup, Forget, GetAttr, SetAttr, ReadLink, MkNod, MkDir, Unlink, RmDir, Symlink, Rename, Link,
        Open, Read, Write, Flush, Release, Fsync, OpenDir, ReadDir, ReleaseDir, FsyncDir, StatFs, SetXattr, GetXattr, ListXattr,
        RemoveXattr, Access, Create, GetLk, SetLk, Bmap, Ioctl, Poll, WriteBuf, RetrieveReply, ForgetMulti, Flock, Fallocate,
        ReadDirPlus, CopyFileRange, Lseek;
}

/// <summary>struct fuse_file_info (40 bytes); the bit fields share one 32-bit word, first declared = lowest bit.</summary>
[StructLayout(LayoutKind.Explicit, Size = 40)]
internal struct FuseFileInfo
{
    public const uint KeepCacheBit = 1u << 2;
    public const uint CacheReaddirBit = 1u << 6;

    [FieldOffset(0)] public int Flags;
    [FieldOffset(4)] public uint Bits;
    [FieldOffset(16)] public ulong Fh;
    [FieldOffset(24)] public ulong LockOwner;
    [FieldOffset(32)] public uint PollEvents;
}

/// <summary>struct timespec.</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct Timespec
{
    public long Seconds;
    public long Nanoseconds;
}

/// <summary>struct stat on x86-64 Linux (144 bytes).</summary>
[StructLayout(LayoutKind.Explicit, Size = 144)]
internal struct LinuxStat
{
    [FieldOffset(0)] public ulong Dev;
    [FieldOffset(8)] public ulong Ino;
    [FieldOffset(16)] public ulong Nlink;
    [FieldOffset(24)] public uint Mode;
    [FieldOffset(28)] public uint Uid;
    [FieldOffset(32)] public uint Gid;
    [FieldOffset(40)] public ulong Rdev;
    [FieldOffset(48)] public long Size;
    [FieldOffset(56)] public long BlkSize;
    [FieldOffset(64)] public long Blocks;
    [FieldOffset(72)] public Timespec Atime;
    [FieldOffset(88)] public Timespec Mtime;
    [FieldOffset(104)] public Timespec Ctime;
}

/// <summary>struct statvfs on x86-64 Linux (112 bytes).</summary>
[StructLayout(LayoutKind.Explicit, Size = 112)]
internal struct LinuxStatVfs
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

/// <summary>struct fuse_entry_param (176 bytes).</summary>
[StructLayout(LayoutKind.Explicit, Size = 176)]
internal struct FuseEntryParam
{
    [FieldOffset(0)] public ulong Ino;
    [FieldOffset(8)] public ulong Generation;
    [FieldOffset(16)] public LinuxStat Attr;
    [FieldOffset(160)] public double AttrTimeout;
    [FieldOffset(168)] public double EntryTimeout;
}

/// <summary>struct fuse_conn_info (128 bytes).</summary>
[StructLayout(LayoutKind.Explicit, Size = 128)]
internal struct FuseConnInfo
{
    public const uint CapAsyncRead = 1u << 0;
    public const uint CapAtomicOTrunc = 1u << 3;
    public const uint CapWritebackCache = 1u << 16;
    public const uint CapParallelDirops = 1u << 18;
    public const uint CapHandleKillpriv = 1u << 20;

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

/// <summary>struct fuse_args (24 bytes).</summary>
[StructLayout(LayoutKind.Explicit, Size = 24)]
internal unsafe struct FuseArgs
{
    [FieldOffset(0)] public int Argc;
    [FieldOffset(8)] public byte** Argv;
    [FieldOffset(16)] public int Allocated;
}

/// <summary>struct fuse_forget_data (16 bytes).</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct FuseForgetData
{
    public ulong Ino;
    public ulong Nlookup;
}

/// <summary>struct fuse_ctx (16 bytes): who sent a request.</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct FuseCtx
{
    public uint Uid;
    public uint Gid;
    public int Pid;
    public uint Umask;
}
