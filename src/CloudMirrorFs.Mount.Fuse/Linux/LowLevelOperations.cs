using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using CloudMirrorFs.Facets;
using CloudMirrorFs.Mount.FileSystem;

namespace CloudMirrorFs.Mount.Linux;

/// <summary>
/// The libfuse low-level (inode) callbacks: each translates its arguments, calls <see cref="MirrorFileSystem"/> and
/// replies. No exception may cross back into C (it would kill the process), so each callback catches everything
/// and replies EIO. The read and write paths allocate nothing: a pinned buffer and a native-memory view per thread.
/// </summary>
internal static unsafe class LowLevelOperations
{
    private const int OTrunc = 0x200, OExcl = 0x80;
    private const int SetMode = 1 << 0, SetUid = 1 << 1, SetGid = 1 << 2, SetSize = 1 << 3, SetAtime = 1 << 4, SetMtime = 1 << 5,
        SetAtimeNow = 1 << 7, SetMtimeNow = 1 << 8;

    [ThreadStatic]
    private static byte[]? t_buffer;

    [ThreadStatic]
    private static NativeMemoryManager? t_input;

    private static MirrorFileSystem? s_fs;
    private static double s_timeout = 1.0;
    private static uint s_maxWrite = 1 << 20;

    private static MirrorFileSystem Fs => s_fs ?? throw new InvalidOperationException("no file system is mounted");

    /// <summary>Binds the callbacks to one file system (one mount per process).</summary>
    public static void Bind(MirrorFileSystem fs, FuseMountOptions options)
    {
        s_fs = fs;
        s_timeout = options.CacheTimeout.TotalSeconds;
        s_maxWrite = (uint)options.MaxWrite;
    }

    /// <summary>Fills the operations table.</summary>
    public static void Fill(FuseLowLevelOps* ops)
    {
        ops->Init = (nint)(delegate* unmanaged<nint, FuseConnInfo*, void>)&Init;
        ops->Lookup = (nint)(delegate* unmanaged<nint, ulong, byte*, void>)&Lookup;
        ops->Forget = (nint)(delegate* unmanaged<nint, ulong, ulong, void>)&Forget;
        ops->GetAttr = (nint)(delegate* unmanaged<nint, ulong, FuseFileInfo*, void>)&GetAttr;
        ops->SetAttr = (nint)(delegate* unmanaged<nint, ulong, LinuxStat*, int, FuseFileInfo*, void>)&SetAttr;
        ops->ReadLink = (nint)(delegate* unmanaged<nint, ulong, void>)&ReadLink;
        ops->MkNod = (nint)(delegate* unmanaged<nint, ulong, byte*, uint, ulong, void>)&MkNod;
        ops->MkDir = (nint)(delegate* unmanaged<nint, ulong, byte*, uint, void>)&MkDir;
        ops->Unlink = (nint)(delegate* unmanaged<nint, ulong, byte*, void>)&Unlink;
        ops->RmDir = (nint)(delegate* unmanaged<nint, ulong, byte*, void>)&RmDir;
        ops->Symlink = (nint)(delegate* unmanaged<nint, byte*, ulong, byte*, void>)&Symlink;
        ops->Rename = (nint)(delegate* unmanaged<nint, ulong, byte*, ulong, byte*, uint, void>)&Rename;
        ops->Link = (nint)(delegate* unmanaged<nint, ulong, ulong, byte*, void>)&Link;
        ops->Open = (nint)(delegate* unmanaged<nint, ulong, FuseFileInfo*, void>)&Open;
        ops->Read = (nint)(delegate* unmanaged<nint, ulong, nuint, long, FuseFileInfo*, void>)&Read;
        ops->Write = (nint)(delegate* unmanaged<nint, ulong, byte*, nuint, long, FuseFileInfo*, void>)&Write;
        ops->Release = (nint)(delegate* unmanaged<nint, ulong, FuseFileInfo*, void>)&Release;
        ops->Fsync = (nint)(delegate* unmanaged<nint, ulong, int, FuseFileInfo*, void>)&Fsync;
        ops->OpenDir = (nint)(delegate* unmanaged<nint, ulong, FuseFileInfo*, void>)&OpenDir;
        ops->ReadDir = (nint)(delegate* unmanaged<nint, ulong, nuint, long, FuseFileInfo*, void>)&ReadDir;
        ops->ReadDirPlus = (nint)(delegate* unmanaged<nint, ulong, nuint, long, FuseFileInfo*, void>)&ReadDirPlus;
        ops->ReleaseDir = (nint)(delegate* unmanaged<nint, ulong, FuseFileInfo*, void>)&ReleaseDir;
        ops->FsyncDir = (nint)(delegate* unmanaged<nint, ulong, int, FuseFileInfo*, void>)&Fsync;
        ops->StatFs = (nint)(delegate* unmanaged<nint, ulong, void>)&StatFs;
        ops->Access = (nint)(delegate* unmanaged<nint, ulong, int, void>)&Access;
        ops->Create = (nint)(delegate* unmanaged<nint, ulong, byte*, uint, FuseFileInfo*, void>)&Create;
        ops->ForgetMulti = (nint)(delegate* unmanaged<nint, nuint, FuseForgetData*, void>)&ForgetMulti;
        ops->Fallocate = (nint)(delegate* unmanaged<nint, ulong, int, long, long, FuseFileInfo*, void>)&Fallocate;
        // Extended attributes, locks (the kernel keeps POSIX and flock locks locally), ioctl, bmap, poll, lseek and
        // copy_file_range stay null: libfuse answers ENOSYS and the kernel falls back or reports EOPNOTSUPP.
        // So does flush: close(2) is not a barrier and a write is already in the engine when write(2) returns, so
        // after the first ENOSYS the kernel sends none and a close costs no round trip (docs/mount.md).
    }

    [UnmanagedCallersOnly]
    private static void Init(nint userdata, FuseConnInfo* conn)
    {
        // Large writes; no write-back cache (a write(2) is acknowledged only once the engine has it: DESIGN.md's
        // durability); the kernel, not us, clears setuid bits on write.
        conn->MaxWrite = s_maxWrite;
        conn->MaxReadahead = Math.Min(conn->MaxReadahead == 0 ? s_maxWrite : conn->MaxReadahead, s_maxWrite);
        conn->Want &= ~(FuseConnInfo.CapWritebackCache | FuseConnInfo.CapHandleKillpriv);
        conn->Want |= conn->Capable & (FuseConnInfo.CapAsyncRead | FuseConnInfo.CapParallelDirops | FuseConnInfo.CapAtomicOTrunc);
        conn->TimeGran = 1;
    }

    [UnmanagedCallersOnly]
    private static void Lookup(nint req, ulong parent, byte* name)
    {
        try
        {
            FsError err = Fs.Lookup((long)parent, Name(name), out FsAttributes a);
            if (err == FsError.NotFound)
            {
                // A negative entry (inode 0) with the entry timeout, instead of ENOENT: the kernel keeps "no such
                // name" as it keeps a name, so a program probing the same missing paths (include paths, PATH, a
                // Python sys.path, .gitignore files) asks once per timeout. Creating the name replaces it at once.
                FuseEntryParam none = new() { EntryTimeout = s_timeout };
                LibFuse.ReplyEntry(req, &none);
                return;
            }
            ReplyEntry(req, err, a);
        }
        catch (Exception)
        {
            LibFuse.ReplyErr(req, LinuxErrno.EIO);
        }
    }

    [UnmanagedCallersOnly]
    private static void Forget(nint req, ulong ino, ulong nlookup) => LibFuse.ReplyNone(req); // inodes are file ids: nothing to drop

    [UnmanagedCallersOnly]
    private static void ForgetMulti(nint req, nuint count, FuseForgetData* forgets) => LibFuse.ReplyNone(req);

    [UnmanagedCallersOnly]
    private static void GetAttr(nint req, ulong ino, FuseFileInfo* fi)
    {
        try
        {
            ReplyAttr(req, Fs.GetAttributes((long)ino, out FsAttributes a), a);
        }
        catch (Exception)
        {
            LibFuse.ReplyErr(req, LinuxErrno.EIO);
        }
    }

    [UnmanagedCallersOnly]
    private static void SetAttr(nint req, ulong ino, LinuxStat* attr, int toSet, FuseFileInfo* fi)
    {
        try
        {
            DateTime now = DateTime.UtcNow;
            DateTime atime = now, mtime = now;
            if (((toSet & SetAtime) != 0 && (toSet & SetAtimeNow) == 0 && !UnixTime.TryJoin(attr->Atime.Seconds, attr->Atime.Nanoseconds, out atime))
                || ((toSet & SetMtime) != 0 && (toSet & SetMtimeNow) == 0 && !UnixTime.TryJoin(attr->Mtime.Seconds, attr->Mtime.Nanoseconds, out mtime)))
            {
                LibFuse.ReplyErr(req, LinuxErrno.EINVAL); // a time the volume cannot store
                return;
            }
            var request = new SetAttributesRequest(
                Size: (toSet & SetSize) != 0 ? attr->Size : null,
                Permissions: (toSet & SetMode) != 0 ? (UnixFileMode)(attr->Mode & 0xFFF) : null,
                Uid: (toSet & SetUid) != 0 ? attr->Uid : null,
                Gid: (toSet & SetGid) != 0 ? attr->Gid : null,
                LastAccessUtc: (toSet & (SetAtime | SetAtimeNow)) != 0 ? atime : null,
                LastWriteUtc: (toSet & (SetMtime | SetMtimeNow)) != 0 ? mtime : null);
            ReplyAttr(req, Fs.SetAttributes((long)ino, request, out FsAttributes a), a);
        }
        catch (Exception)
        {
            LibFuse.ReplyErr(req, LinuxErrno.EIO);
        }
    }

    /// <summary>access(2) and chdir: only sent when the mount has no default_permissions (LinuxFuseMount says when).</summary>
    [UnmanagedCallersOnly]
    private static void Access(nint req, ulong ino, int mask)
    {
        try
        {
            FuseCtx* ctx = LibFuse.RequestContext(req);
            LibFuse.ReplyErr(req, LinuxErrno.From(Fs.CheckAccess((long)ino, mask, ctx->Uid, ctx->Gid)));
        }
        catch (Exception)
        {
            LibFuse.ReplyErr(req, LinuxErrno.EIO);
        }
    }

    [UnmanagedCallersOnly]
    private static void ReadLink(nint req, ulong ino)
    {
        try
        {
            FsError err = Fs.ReadLink((long)ino, out string target);
            if (err != FsError.None)
            {
                LibFuse.ReplyErr(req, LinuxErrno.From(err));
                return;
            }
            byte[] z = new byte[System.Text.Encoding.UTF8.GetByteCount(target) + 1];
            System.Text.Encoding.UTF8.GetBytes(target, z);
            fixed (byte* p = z)
            {
                LibFuse.ReplyReadlink(req, p);
            }
        }
        catch (Exception)
        {
            LibFuse.ReplyErr(req, LinuxErrno.EIO);
        }
    }

    [UnmanagedCallersOnly]
    private static void MkNod(nint req, ulong parent, byte* name, uint mode, ulong rdev)
    {
        try
        {
            ReplyEntry(req, Fs.MakeNode((long)parent, Name(name), mode, out FsAttributes a), a);
        }
        catch (Exception)
        {
            LibFuse.ReplyErr(req, LinuxErrno.EIO);
        }
    }

    [UnmanagedCallersOnly]
    private static void MkDir(nint req, ulong parent, byte* name, uint mode)
    {
        try
        {
            ReplyEntry(req, Fs.MakeDirectory((long)parent, Name(name), (UnixFileMode)(mode & 0xFFF), out FsAttributes a), a);
        }
        catch (Exception)
        {
            LibFuse.ReplyErr(req, LinuxErrno.EIO);
        }
    }

    [UnmanagedCallersOnly]
    private static void Unlink(nint req, ulong parent, byte* name) => ReplyStatus(req, () => Fs.Unlink((long)parent, Name(name)));

    [UnmanagedCallersOnly]
    private static void RmDir(nint req, ulong parent, byte* name) => ReplyStatus(req, () => Fs.RemoveDirectory((long)parent, Name(name)));

    [UnmanagedCallersOnly]
    private static void Symlink(nint req, byte* link, ulong parent, byte* name)
    {
        try
        {
            ReplyEntry(req, Fs.Symlink((long)parent, Name(name), Name(link), out FsAttributes a), a);
        }
        catch (Exception)
        {
            LibFuse.ReplyErr(req, LinuxErrno.EIO);
        }
    }

    [UnmanagedCallersOnly]
    private static void Rename(nint req, ulong parent, byte* name, ulong newParent, byte* newName, uint flags)
        => ReplyStatus(req, () => Fs.Rename((long)parent, Name(name), (long)newParent, Name(newName), flags));

    [UnmanagedCallersOnly]
    private static void Link(nint req, ulong ino, ulong newParent, byte* newName) => LibFuse.ReplyErr(req, LinuxErrno.From(MirrorFileSystem.Link()));

    [UnmanagedCallersOnly]
    private static void Open(nint req, ulong ino, FuseFileInfo* fi)
    {
        try
        {
            FsError err = Fs.Open((long)ino, (fi->Flags & OTrunc) != 0);
            if (err != FsError.None)
            {
                LibFuse.ReplyErr(req, LinuxErrno.From(err));
                return;
            }
            fi->Fh = ino;
            fi->Bits |= FuseFileInfo.KeepCacheBit; // only this mount changes the data: the page cache stays valid across opens
            if (LibFuse.ReplyOpen(req, fi) != 0)
            {
                Fs.Release((long)ino); // the opener went away (interrupted): no release will come
            }
        }
        catch (Exception)
        {
            LibFuse.ReplyErr(req, LinuxErrno.EIO);
        }
    }

    [UnmanagedCallersOnly]
    private static void Create(nint req, ulong parent, byte* name, uint mode, FuseFileInfo* fi)
    {
        try
        {
            FsError err = Fs.Create((long)parent, Name(name), (UnixFileMode)(mode & 0xFFF), (fi->Flags & OExcl) != 0, (fi->Flags & OTrunc) != 0,
                out FsAttributes a);
            if (err != FsError.None)
            {
                LibFuse.ReplyErr(req, LinuxErrno.From(err));
                return;
            }
            fi->Fh = (ulong)a.Inode;
            fi->Bits |= FuseFileInfo.KeepCacheBit;
            FuseEntryParam e = Entry(a);
            if (LibFuse.ReplyCreate(req, &e, fi) != 0)
            {
                Fs.Release(a.Inode);
            }
        }
        catch (Exception)
        {
            LibFuse.ReplyErr(req, LinuxErrno.EIO);
        }
    }

    [UnmanagedCallersOnly]
    private static void Read(nint req, ulong ino, nuint size, long offset, FuseFileInfo* fi)
    {
        try
        {
            int length = (int)Math.Min(size, int.MaxValue / 2);
            byte[] buffer = Buffer(length);
            FsError err = Fs.Read((long)ino, offset, buffer.AsMemory(0, length), out int count);
            if (err != FsError.None)
            {
                LibFuse.ReplyErr(req, LinuxErrno.From(err));
                return;
            }
            LibFuse.ReplyBuf(req, (byte*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(buffer)), (nuint)count);
        }
        catch (Exception)
        {
            LibFuse.ReplyErr(req, LinuxErrno.EIO);
        }
    }

    [UnmanagedCallersOnly]
    private static void Write(nint req, ulong ino, byte* buf, nuint size, long offset, FuseFileInfo* fi)
    {
        NativeMemoryManager input = t_input ??= new NativeMemoryManager();
        try
        {
            FsError err = Fs.Write((long)ino, offset, input.Wrap(buf, checked((int)size)));
            if (err != FsError.None)
            {
                LibFuse.ReplyErr(req, LinuxErrno.From(err));
                return;
            }
            LibFuse.ReplyWrite(req, size);
        }
        catch (Exception)
        {
            LibFuse.ReplyErr(req, LinuxErrno.EIO);
        }
        finally
        {
            input.Clear();
        }
    }

    [UnmanagedCallersOnly]
    private static void Release(nint req, ulong ino, FuseFileInfo* fi) => ReplyStatus(req, () => Fs.Release((long)ino));

    [UnmanagedCallersOnly]
    private static void Fsync(nint req, ulong ino, int datasync, FuseFileInfo* fi) => ReplyStatus(req, () => Fs.Sync((long)ino));

    [UnmanagedCallersOnly]
    private static void OpenDir(nint req, ulong ino, FuseFileInfo* fi)
    {
        try
        {
            FsError err = Fs.OpenDirectory((long)ino, out long handle);
            if (err != FsError.None)
            {
                LibFuse.ReplyErr(req, LinuxErrno.From(err));
                return;
            }
            fi->Fh = (ulong)handle;
            if (LibFuse.ReplyOpen(req, fi) != 0)
            {
                Fs.ReleaseDirectory(handle);
            }
        }
        catch (Exception)
        {
            LibFuse.ReplyErr(req, LinuxErrno.EIO);
        }
    }

    [UnmanagedCallersOnly]
    private static void ReadDir(nint req, ulong ino, nuint size, long offset, FuseFileInfo* fi) => ReplyDirectory(req, size, offset, fi, plus: false);

    /// <summary>
    /// readdir with each entry's attributes: the kernel caches the names and attributes as lookups would, so that
    /// <c>ls -l</c>, <c>find</c> or <c>git status</c> over a folder cost one request per batch of entries instead of a
    /// lookup per entry. The attributes are read now, not taken from the opendir snapshot: the kernel only drops
    /// attributes older than the request, and a size from before a write acknowledged since the snapshot would shrink
    /// the file in its cache. "." and ".." and entries gone since the snapshot go without (inode 0: names only).
    /// libfuse counts a lookup for the others, which needs no bookkeeping here (inodes are file ids, forgets are ignored).
    /// </summary>
    [UnmanagedCallersOnly]
    private static void ReadDirPlus(nint req, ulong ino, nuint size, long offset, FuseFileInfo* fi) => ReplyDirectory(req, size, offset, fi, plus: true);

    /// <summary>The entries of the opendir snapshot from <paramref name="offset"/> on, as many as fit in <paramref name="size"/> bytes.</summary>
    private static void ReplyDirectory(nint req, nuint size, long offset, FuseFileInfo* fi, bool plus)
    {
        try
        {
            FsError err = Fs.ReadDirectory((long)fi->Fh, out IReadOnlyList<FsDirectoryEntry> entries);
            if (err != FsError.None)
            {
                LibFuse.ReplyErr(req, LinuxErrno.From(err));
                return;
            }
            int capacity = (int)Math.Min(size, 1 << 20);
            byte[] buffer = Buffer(capacity);
            byte* start = (byte*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(buffer));
            nuint used = 0;
            for (long i = Math.Max(0, offset); i < entries.Count; i++)
            {
                FsDirectoryEntry e = entries[(int)i];
                FuseEntryParam entry = default;
                if (plus && !IsDot(e.NameUtf8Z) && Fs.GetAttributes(e.Inode, out FsAttributes a) == FsError.None)
                {
                    entry = Entry(a);
                }
                else
                {
                    entry.Attr.Ino = (ulong)e.Inode; // the name alone (inode 0 in a readdirplus entry: no lookup)
                    entry.Attr.Mode = FsAttributes.TypeBitsOf(e.Kind);
                }
                nuint need;
                fixed (byte* name = e.NameUtf8Z)
                {
                    need = plus
                        ? LibFuse.AddDirentryPlus(req, start + used, (nuint)capacity - used, name, &entry, i + 1)
                        : LibFuse.AddDirentry(req, start + used, (nuint)capacity - used, name, &entry.Attr, i + 1);
                }
                if (need > (nuint)capacity - used)
                {
                    break;
                }
                used += need;
            }
            LibFuse.ReplyBuf(req, start, used);
        }
        catch (Exception)
        {
            LibFuse.ReplyErr(req, LinuxErrno.EIO);
        }
    }

    private static bool IsDot(byte[] nameZ) => nameZ[0] == (byte)'.' && (nameZ[1] == 0 || (nameZ[1] == (byte)'.' && nameZ[2] == 0));

    [UnmanagedCallersOnly]
    private static void ReleaseDir(nint req, ulong ino, FuseFileInfo* fi) => ReplyStatus(req, () => Fs.ReleaseDirectory((long)fi->Fh));

    [UnmanagedCallersOnly]
    private static void StatFs(nint req, ulong ino)
    {
        try
        {
            FsError err = Fs.StatFs(out SpaceInfo space);
            if (err != FsError.None)
            {
                LibFuse.ReplyErr(req, LinuxErrno.From(err));
                return;
            }
            const ulong unit = 4096;
            LinuxStatVfs v = default;
            v.BlockSize = (ulong)Fs.BlockSize;
            v.FragmentSize = unit;
            v.Blocks = (ulong)space.TotalBytes / unit;
            v.BlocksFree = (ulong)space.FreeBytes / unit;
            v.BlocksAvailable = v.BlocksFree;
            v.Files = 1UL << 32;
            v.FilesFree = v.Files / 2;
            v.FilesAvailable = v.FilesFree;
            v.NameMax = 255;
            LibFuse.ReplyStatfs(req, &v);
        }
        catch (Exception)
        {
            LibFuse.ReplyErr(req, LinuxErrno.EIO);
        }
    }

    [UnmanagedCallersOnly]
    private static void Fallocate(nint req, ulong ino, int mode, long offset, long length, FuseFileInfo* fi)
        => ReplyStatus(req, () => Fs.Allocate((long)ino, mode, offset, length));

    private static void ReplyStatus(nint req, Func<FsError> call)
    {
        try
        {
            LibFuse.ReplyErr(req, LinuxErrno.From(call()));
        }
        catch (Exception)
        {
            LibFuse.ReplyErr(req, LinuxErrno.EIO);
        }
    }

    private static void ReplyEntry(nint req, FsError err, in FsAttributes a)
    {
        if (err != FsError.None)
        {
            LibFuse.ReplyErr(req, LinuxErrno.From(err));
            return;
        }
        FuseEntryParam e = Entry(a);
        LibFuse.ReplyEntry(req, &e);
    }

    private static void ReplyAttr(nint req, FsError err, in FsAttributes a)
    {
        if (err != FsError.None)
        {
            LibFuse.ReplyErr(req, LinuxErrno.From(err));
            return;
        }
        LinuxStat st = Stat(a);
        LibFuse.ReplyAttr(req, &st, s_timeout);
    }

    private static FuseEntryParam Entry(in FsAttributes a) => new()
    {
        Ino = (ulong)a.Inode,
        Generation = 0, // file ids are never reused
        Attr = Stat(a),
        AttrTimeout = s_timeout,
        EntryTimeout = s_timeout,
    };

    internal static LinuxStat Stat(in FsAttributes a) => new()
    {
        Ino = (ulong)a.Inode,
        Mode = a.Mode,
        Nlink = (ulong)a.Links,
        Uid = a.Uid,
        Gid = a.Gid,
        Size = a.Size,
        BlkSize = Fs.BlockSize,
        Blocks = a.Blocks512,
        Atime = ToTimespec(a.LastAccessUtc),
        Mtime = ToTimespec(a.LastWriteUtc),
        Ctime = ToTimespec(a.ChangeUtc),
    };

    internal static Timespec ToTimespec(DateTime utc)
    {
        (long seconds, long nanoseconds) = UnixTime.Split(utc);
        return new Timespec { Seconds = seconds, Nanoseconds = nanoseconds };
    }

    private static string Name(byte* name) => Marshal.PtrToStringUTF8((nint)name) ?? "";

    private static byte[] Buffer(int length)
    {
        byte[]? b = t_buffer;
        if (b is null || b.Length < length)
        {
            b = GC.AllocateUninitializedArray<byte>(Math.Max(length, (1 << 20) + 4096), pinned: true);
            t_buffer = b;
        }
        return b;
    }
}
