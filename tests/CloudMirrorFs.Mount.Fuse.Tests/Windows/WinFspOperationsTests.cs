using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text;
using CloudMirrorFs.Facets;
using CloudMirrorFs.Mount.FileSystem;
using CloudMirrorFs.Mount.Windows;
using CloudMirrorFs.Options;
using CloudMirrorFs.Volume;

namespace CloudMirrorFs.Mount.Tests.Windows;

/// <summary>
/// The WinFsp callbacks, driven through the operations table as WinFsp's src/dll/fuse/fuse_intf.c drives them (its
/// start-up probes, CreateFile, DeleteFile, directory listing, rename, set-info), over a real MirrorFileSystem. The
/// callbacks are platform-neutral code, so this runs on Linux; only WinFsp itself is missing.
/// </summary>
[TestClass]
public sealed class WinFspOperationsTests
{
    private const int ORdwr = 2, OCreat = 0x0100, OExcl = 0x0400; // MSVCRT fcntl.h, as fuse_intf.c passes them
    private const uint RegularMode = 0x8000 | 0b110_100_100;

    private static readonly List<string> Listed = [];
    private static int s_stopAfter;

    private string _dir = "";
    private MirrorVolume? _volume;
    private readonly List<nint> _strings = [];
    private Fuse3Operations _ops;

    [TestInitialize]
    public async Task OpenAsync()
    {
        _dir = Path.Combine(Path.GetTempPath(), "cmfs-winfsp-tests", Guid.NewGuid().ToString("N")[..12]);
        _volume = await MirrorVolume.OpenAsync(new VolumeOptions
        {
            StateDir = Path.Combine(_dir, "state"),
            Facets = [new FacetOptions { Name = "local", Role = FacetRole.Local, Kind = "directory", Path = Path.Combine(_dir, "local") }],
        });
        WinFspOperations.Bind(new MirrorFileSystem(_volume, 1000, 1000));
        _ops = Table();
    }

    private static unsafe Fuse3Operations Table()
    {
        Fuse3Operations ops = default;
        WinFspOperations.Fill(&ops);
        return ops;
    }

    [TestCleanup]
    public async Task CloseAsync()
    {
        if (_volume is not null)
        {
            await _volume.DisposeAsync();
        }
        Directory.Delete(_dir, recursive: true);
        foreach (nint p in _strings)
        {
            Free(p);
        }
    }

    [TestMethod]
    public unsafe void StartupProbes_AsWinFspsLoopMakesThem_AnswerAsASymlinkCapableCaseSensitiveVolume()
    {
        Fuse3ConnInfo conn = default;
        conn.Want = Fuse3ConnInfo.CapCaseInsensitive | Fuse3ConnInfo.CapReaddirPlus;
        Assert.AreEqual(0, ((delegate* unmanaged[Cdecl]<Fuse3ConnInfo*, nint, nint>)_ops.Init)(&conn, 0));
        Assert.AreEqual(0u, conn.Want, "case-sensitive, no readdirplus");

        WinFspStatVfs v = default;
        Assert.AreEqual(0, StatFs("/", &v));
        Assert.AreEqual(4096UL, v.FragmentSize, "WinFsp takes f_frsize as the sector size");
        Assert.AreEqual(255UL, v.NameMax);

        Assert.AreEqual(0, GetAttr("/", out WinFspStat root));
        Assert.AreEqual(0x4000u, root.Mode & 0xF000, "the root is a directory");
        Assert.AreEqual((ulong)MirrorFileSystem.RootInode, root.Ino);

        byte* buf = stackalloc byte[64];
        Assert.AreEqual(-WinFspErrno.EINVAL, ReadLink("/", buf, 64), "EINVAL, not ENOSYS: WinFsp turns symlink support on");
        Assert.AreNotEqual(0, GetAttr("/.", out _), "no slashdot queries: WinFsp resolves symlink directories itself");
    }

    [TestMethod]
    public unsafe void CreateFile_WriteReadGetattrRelease_GoThroughTheFileHandle()
    {
        Fuse3FileInfo fi = default;
        fi.Flags = OCreat | OExcl | ORdwr;
        Assert.AreEqual(0, Create("/f.txt", RegularMode, &fi));
        Assert.AreNotEqual(0UL, fi.Fh);
        Assert.AreNotEqual(Fuse3FileInfo.NoHandle, fi.Fh);

        byte[] hello = "hello"u8.ToArray();
        fixed (byte* p = hello)
        {
            Assert.AreEqual(5, Write("/f.txt", p, 5, 0, &fi));
        }
        byte* buf = stackalloc byte[16];
        Assert.AreEqual(5, Read("/f.txt", buf, 16, 0, &fi));
        Assert.AreEqual("hello", Encoding.UTF8.GetString(buf, 5));
        Assert.AreEqual(0, Read("/f.txt", buf, 16, 5, &fi), "0 at the end: WinFsp answers STATUS_END_OF_FILE");

        WinFspStat st;
        Assert.AreEqual(0, ((delegate* unmanaged[Cdecl]<byte*, WinFspStat*, Fuse3FileInfo*, int>)_ops.GetAttr)(Z("/ignored, fh wins"), &st, &fi));
        Assert.AreEqual(5L, st.Size);
        Assert.AreEqual(0x8000u, st.Mode & 0xF000);
        Assert.AreEqual(fi.Fh, st.Ino, "the inode (Windows' IndexNumber) is the file id");
        Assert.AreEqual((ushort)1, st.Nlink);

        Assert.AreEqual(0, Call(_ops.Flush, "/f.txt", &fi));
        Assert.AreEqual(0, Call(_ops.Release, "/f.txt", &fi));

        Fuse3FileInfo again = default;
        again.Flags = OCreat | OExcl | ORdwr;
        Assert.AreEqual(-WinFspErrno.EEXIST, Create("/f.txt", RegularMode, &again), "CREATE_NEW on an existing name");
    }

    [TestMethod]
    public unsafe void DeleteFile_OpenUnlinkRelease_RemovesTheFile()
    {
        Fuse3FileInfo fi = default;
        fi.Flags = OCreat | OExcl | ORdwr;
        Create("/gone", RegularMode, &fi);
        Call(_ops.Release, "/gone", &fi);

        // DeleteFile: Create(FILE_OPEN) -> open; SetInformation(Disposition); Cleanup(Delete) -> unlink; Close -> flush, release.
        Fuse3FileInfo open = default;
        Assert.AreEqual(0, Call(_ops.Open, "/gone", &open));
        Assert.AreEqual(0, Call(_ops.Unlink, "/gone"));
        Assert.AreEqual(-WinFspErrno.ENOENT, GetAttr("/gone", out _));
        Assert.AreEqual(0, Call(_ops.Flush, "/gone", &open));
        Assert.AreEqual(0, Call(_ops.Release, "/gone", &open));

        Assert.IsFalse(File.Exists(Path.Combine(_dir, "local", "gone")));
        Assert.IsFalse(Directory.Exists(Path.Combine(_dir, "local", MirrorFileSystem.HiddenDirectory)));
    }

    [TestMethod]
    public unsafe void Directories_ListThroughTheFiller_AndRefuseRmdirWhileNotEmpty()
    {
        Assert.AreEqual(0, MkDir("/d", 0b111_101_101));
        Fuse3FileInfo fi = default;
        fi.Flags = OCreat | OExcl | ORdwr;
        Assert.AreEqual(0, Create("/d/a", RegularMode, &fi));
        Call(_ops.Release, "/d/a", &fi);

        Fuse3FileInfo dir = default;
        Assert.AreEqual(0, Call(_ops.OpenDir, "/d", &dir));
        CollectionAssert.AreEqual(new[] { ".", "..", "a" }, List("/d", &dir, stopAfter: int.MaxValue));
        CollectionAssert.AreEqual(new[] { ".", ".." }, List("/d", &dir, stopAfter: 1), "a full filler (non-zero) ends the listing");

        Assert.AreEqual(-WinFspErrno.ENOTEMPTY, Call(_ops.RmDir, "/d"), "ENOTEMPTY is 41: STATUS_DIRECTORY_NOT_EMPTY");
        Assert.AreEqual(0, Call(_ops.ReleaseDir, "/d", &dir));
        Assert.AreEqual(0, Call(_ops.FsyncDir, "/d", 0, &dir));

        Assert.AreEqual(0, Call(_ops.Unlink, "/d/a"));
        Assert.AreEqual(0, Call(_ops.RmDir, "/d"));
        Assert.AreEqual(-WinFspErrno.ENOENT, Call(_ops.RmDir, "/d"));
    }

    [TestMethod]
    public unsafe void Rename_MovesBetweenDirectories()
    {
        MkDir("/d", 0b111_101_101);
        Fuse3FileInfo fi = default;
        fi.Flags = OCreat | OExcl | ORdwr;
        Create("/d/a", RegularMode, &fi);
        Call(_ops.Release, "/d/a", &fi);

        Assert.AreEqual(0, ((delegate* unmanaged[Cdecl]<byte*, byte*, uint, int>)_ops.Rename)(Z("/d/a"), Z("/b"), 0));
        Assert.AreEqual(0, GetAttr("/b", out WinFspStat b));
        Assert.AreEqual(fi.Fh, b.Ino, "the file id survives the rename");
        Assert.AreEqual(-WinFspErrno.ENOENT, GetAttr("/d/a", out _));
    }

    [TestMethod]
    public unsafe void Symlink_ReadLink_TargetFirstThenTheNewPath()
    {
        Assert.AreEqual(0, ((delegate* unmanaged[Cdecl]<byte*, byte*, int>)_ops.Symlink)(Z("some/target"), Z("/l")));
        Assert.AreEqual(0, GetAttr("/l", out WinFspStat l));
        Assert.AreEqual(0xA000u, l.Mode & 0xF000);

        byte* buf = stackalloc byte[64];
        Assert.AreEqual(0, ReadLink("/l", buf, 64));
        Assert.AreEqual("some/target", Marshal.PtrToStringUTF8((nint)buf));
        Assert.AreEqual(0, ReadLink("/l", buf, 5));
        Assert.AreEqual("some", Marshal.PtrToStringUTF8((nint)buf), "truncated to the buffer, NUL-terminated");
    }

    [TestMethod]
    public unsafe void SetInformation_TruncateChmodChownUtimens()
    {
        Fuse3FileInfo fi = default;
        fi.Flags = OCreat | OExcl | ORdwr;
        Create("/f", RegularMode, &fi);
        byte[] data = new byte[100];
        fixed (byte* p = data)
        {
            Write("/f", p, 100, 0, &fi);
        }

        Assert.AreEqual(0, ((delegate* unmanaged[Cdecl]<byte*, long, Fuse3FileInfo*, int>)_ops.Truncate)(Z("/f"), 10, &fi), "Overwrite/SetFileSize: ftruncate");
        Assert.AreEqual(0, GetAttr("/f", out WinFspStat st));
        Assert.AreEqual(10L, st.Size);

        Assert.AreEqual(0, ((delegate* unmanaged[Cdecl]<byte*, uint, Fuse3FileInfo*, int>)_ops.Chmod)(Z("/f"), 0x8000 | 0b110_000_000, null));
        GetAttr("/f", out st);
        Assert.AreEqual(0b110_000_000u, st.Mode & 0xFFF);

        var chown = (delegate* unmanaged[Cdecl]<byte*, uint, uint, Fuse3FileInfo*, int>)_ops.Chown;
        Assert.AreEqual(0, chown(Z("/f"), uint.MaxValue, uint.MaxValue, null), "-1 leaves the ids as they are");
        Assert.AreEqual(-WinFspErrno.EPERM, chown(Z("/f"), 5, 5, null), "one owner per volume");

        FuseTimespec* tv = stackalloc FuseTimespec[2];
        tv[0] = new FuseTimespec { Seconds = 1_600_000_000, Nanoseconds = 0 };
        tv[1] = new FuseTimespec { Seconds = 1_700_000_000, Nanoseconds = 500_000_000 };
        Assert.AreEqual(0, ((delegate* unmanaged[Cdecl]<byte*, FuseTimespec*, Fuse3FileInfo*, int>)_ops.Utimens)(Z("/f"), tv, null));
        GetAttr("/f", out st);
        Assert.AreEqual(1_700_000_000L, st.Mtim.Seconds);
        Assert.AreEqual(st.Mtim.Seconds, st.Birthtim.Seconds, "no birth time in the volume: the last write time stands in");

        Assert.AreEqual(0, Call(_ops.Fsync, "/f", 0, &fi));
        Call(_ops.Release, "/f", &fi);
    }

    [TestMethod]
    public unsafe void Errors_ComeBackAsNegativeWinFspErrnos()
    {
        Assert.AreEqual(-WinFspErrno.ENOENT, GetAttr("/missing", out _));
        Assert.AreEqual(-WinFspErrno.ENOENT, MkDir("/missing/x", 0b111_101_101));
        Assert.AreEqual(-WinFspErrno.ENAMETOOLONG, MkDir("/" + new string('n', 256), 0b111_101_101));
        Assert.AreEqual(0, MkDir("/d", 0b111_101_101));
        Assert.AreEqual(-WinFspErrno.EEXIST, MkDir("/d", 0b111_101_101));
        Assert.AreEqual(-WinFspErrno.ENOENT, GetAttr("/" + MirrorFileSystem.HiddenDirectory, out _), "the hidden folder is invisible");
        Assert.AreEqual(-WinFspErrno.EPERM, ((delegate* unmanaged[Cdecl]<byte*, uint, uint, int>)_ops.MkNod)(Z("/fifo"), 0x1000 | 0b110_100_100, 0), "FIFOs are refused");
    }

    [TestMethod]
    public unsafe void Timespec_RoundTripsIncludingBeforeTheEpoch()
    {
        var before = new DateTime(1969, 12, 31, 23, 59, 59, 500, DateTimeKind.Utc);
        FuseTimespec t = WinFspOperations.ToTimespec(before);
        Assert.AreEqual(-1L, t.Seconds);
        Assert.AreEqual(500_000_000L, t.Nanoseconds);
        Assert.IsTrue(WinFspOperations.TryFromTimespec(t, out DateTime back));
        Assert.AreEqual(before, back);
        Assert.IsFalse(WinFspOperations.TryFromTimespec(new FuseTimespec { Seconds = 0, Nanoseconds = 1_000_000_000 }, out _));
        Assert.IsFalse(WinFspOperations.TryFromTimespec(new FuseTimespec { Seconds = long.MaxValue }, out _));
    }

    private static unsafe void Free(nint p) => NativeMemory.Free((void*)p);

    private unsafe string[] List(string path, Fuse3FileInfo* dir, int stopAfter)
    {
        Listed.Clear();
        s_stopAfter = stopAfter;
        var readDir = (delegate* unmanaged[Cdecl]<byte*, nint, nint, long, Fuse3FileInfo*, int, int>)_ops.ReadDir;
        Assert.AreEqual(0, readDir(Z(path), 0, (nint)(delegate* unmanaged[Cdecl]<nint, byte*, WinFspStat*, long, int, int>)&Filler, 0, dir, 0));
        return [.. Listed];
    }

    /// <summary>A filler as WinFsp's: answers non-zero ("buffer full") once it has taken more than <see cref="s_stopAfter"/> names.</summary>
    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static unsafe int Filler(nint buf, byte* name, WinFspStat* st, long off, int flags)
    {
        Listed.Add(Marshal.PtrToStringUTF8((nint)name)!);
        return Listed.Count > s_stopAfter ? 1 : 0;
    }

    private unsafe int GetAttr(string path, out WinFspStat st)
    {
        WinFspStat s;
        int rc = ((delegate* unmanaged[Cdecl]<byte*, WinFspStat*, Fuse3FileInfo*, int>)_ops.GetAttr)(Z(path), &s, null);
        st = s;
        return rc;
    }

    private unsafe int StatFs(string path, WinFspStatVfs* v) => ((delegate* unmanaged[Cdecl]<byte*, WinFspStatVfs*, int>)_ops.StatFs)(Z(path), v);

    private unsafe int ReadLink(string path, byte* buf, nuint size) => ((delegate* unmanaged[Cdecl]<byte*, byte*, nuint, int>)_ops.ReadLink)(Z(path), buf, size);

    private unsafe int MkDir(string path, uint mode) => ((delegate* unmanaged[Cdecl]<byte*, uint, int>)_ops.MkDir)(Z(path), mode);

    private unsafe int Create(string path, uint mode, Fuse3FileInfo* fi) => ((delegate* unmanaged[Cdecl]<byte*, uint, Fuse3FileInfo*, int>)_ops.Create)(Z(path), mode, fi);

    private unsafe int Read(string path, byte* buf, nuint size, long offset, Fuse3FileInfo* fi)
        => ((delegate* unmanaged[Cdecl]<byte*, byte*, nuint, long, Fuse3FileInfo*, int>)_ops.Read)(Z(path), buf, size, offset, fi);

    private unsafe int Write(string path, byte* buf, nuint size, long offset, Fuse3FileInfo* fi)
        => ((delegate* unmanaged[Cdecl]<byte*, byte*, nuint, long, Fuse3FileInfo*, int>)_ops.Write)(Z(path), buf, size, offset, fi);

    private unsafe int Call(nint op, string path) => ((delegate* unmanaged[Cdecl]<byte*, int>)op)(Z(path));

    private unsafe int Call(nint op, string path, Fuse3FileInfo* fi) => ((delegate* unmanaged[Cdecl]<byte*, Fuse3FileInfo*, int>)op)(Z(path), fi);

    private unsafe int Call(nint op, string path, int datasync, Fuse3FileInfo* fi) => ((delegate* unmanaged[Cdecl]<byte*, int, Fuse3FileInfo*, int>)op)(Z(path), datasync, fi);

    /// <summary>A NUL-terminated UTF-8 copy in unmanaged memory, freed after the test.</summary>
    private unsafe byte* Z(string s)
    {
        int n = Encoding.UTF8.GetByteCount(s);
        byte* p = (byte*)NativeMemory.Alloc((nuint)n + 1);
        _strings.Add((nint)p);
        Encoding.UTF8.GetBytes(s, new Span<byte>(p, n));
        p[n] = 0;
        return p;
    }
}
