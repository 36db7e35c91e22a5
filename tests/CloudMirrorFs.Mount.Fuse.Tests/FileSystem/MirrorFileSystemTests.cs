using System.Text;
using CloudMirrorFs.Facets;
using CloudMirrorFs.Mount.FileSystem;
using CloudMirrorFs.Options;
using CloudMirrorFs.Volume;

namespace CloudMirrorFs.Mount.Tests.FileSystem;

/// <summary>MirrorFileSystem's own rules, in process (no kernel): open-unlinked files, the hidden folder, owners, names.</summary>
[TestClass]
public sealed class MirrorFileSystemTests
{
    private string _dir = "";
    private MirrorVolume? _volume;
    private MirrorFileSystem? _fs;

    private MirrorFileSystem Fs => _fs!;

    [TestInitialize]
    public async Task OpenAsync()
    {
        _dir = Path.Combine(Path.GetTempPath(), "cmfs-fs-tests", Guid.NewGuid().ToString("N")[..12]);
        _volume = await MirrorVolume.OpenAsync(new VolumeOptions
        {
            StateDir = Path.Combine(_dir, "state"),
            Facets = [new FacetOptions { Name = "local", Role = FacetRole.Local, Kind = "directory", Path = Path.Combine(_dir, "local") }],
        });
        _fs = new MirrorFileSystem(_volume, 1000, 1000);
    }

    [TestCleanup]
    public async Task CloseAsync()
    {
        if (_volume is not null)
        {
            await _volume.DisposeAsync();
        }
        Directory.Delete(_dir, recursive: true);
    }

    [TestMethod]
    public void CheckAccess_FollowsTheOwnerGroupOtherBitsAndRootsRules()
    {
        Assert.AreEqual(FsError.None, Fs.Create(MirrorFileSystem.RootInode, "f", (UnixFileMode)0b110_100_000, exclusive: true, truncate: false, out FsAttributes f));
        Assert.AreEqual(FsError.None, Fs.MakeDirectory(MirrorFileSystem.RootInode, "d", 0, out FsAttributes d));
        const int R = 4, W = 2, X = 1;

        // the owner (1000) gets rw-, the group (1000) r--, others ---
        Assert.AreEqual(FsError.None, Fs.CheckAccess(f.Inode, R | W, 1000, 1000));
        Assert.AreEqual(FsError.AccessDenied, Fs.CheckAccess(f.Inode, X, 1000, 1000));
        Assert.AreEqual(FsError.None, Fs.CheckAccess(f.Inode, R, 2000, 1000));
        Assert.AreEqual(FsError.AccessDenied, Fs.CheckAccess(f.Inode, W, 2000, 1000));
        Assert.AreEqual(FsError.AccessDenied, Fs.CheckAccess(f.Inode, R, 2000, 2000));
        Assert.AreEqual(FsError.None, Fs.CheckAccess(f.Inode, 0, 2000, 2000), "F_OK only asks whether it exists");

        // root may do anything but execute a file nobody may execute; a directory is always searchable for root
        Assert.AreEqual(FsError.None, Fs.CheckAccess(f.Inode, R | W, 0, 0));
        Assert.AreEqual(FsError.AccessDenied, Fs.CheckAccess(f.Inode, X, 0, 0));
        Assert.AreEqual(FsError.None, Fs.CheckAccess(d.Inode, R | W | X, 0, 0), "a 0000 directory, for root");
        Assert.AreEqual(FsError.AccessDenied, Fs.CheckAccess(d.Inode, X, 1000, 1000), "a 0000 directory, for its owner");

        Assert.AreEqual(FsError.None, Fs.Release(f.Inode));
        Assert.AreEqual(FsError.None, Fs.Unlink(MirrorFileSystem.RootInode, "f"));
        Assert.AreEqual(FsError.NotFound, Fs.CheckAccess(f.Inode, 0, 0, 0));
    }

    [TestMethod]
    public void Unlink_OfAnOpenFile_KeepsItReadableUntilTheLastRelease()
    {
        Assert.AreEqual(FsError.None, Fs.Create(MirrorFileSystem.RootInode, "f", (UnixFileMode)0b110_100_100, exclusive: true, truncate: false, out FsAttributes a));
        Assert.AreEqual(FsError.None, Fs.Write(a.Inode, 0, Encoding.UTF8.GetBytes("alive")));
        Assert.AreEqual(FsError.None, Fs.Open(a.Inode, truncate: false)); // a second handle
        Assert.AreEqual(FsError.None, Fs.Unlink(MirrorFileSystem.RootInode, "f"));

        Assert.AreEqual(FsError.NotFound, Fs.Lookup(MirrorFileSystem.RootInode, "f", out _));
        Assert.AreEqual(FsError.NotFound, Fs.Lookup(MirrorFileSystem.RootInode, MirrorFileSystem.HiddenDirectory, out _), "the hidden folder is never looked up");
        Assert.AreEqual(FsError.None, Fs.GetAttributes(a.Inode, out FsAttributes after));
        Assert.AreEqual(0, after.Links, "an unlinked open file has no links");
        byte[] buffer = new byte[16];
        Assert.AreEqual(FsError.None, Fs.Read(a.Inode, 0, buffer, out int n));
        Assert.AreEqual("alive", Encoding.UTF8.GetString(buffer, 0, n));
        Assert.AreEqual(FsError.None, Fs.OpenDirectory(MirrorFileSystem.RootInode, out long dir));
        Assert.AreEqual(FsError.None, Fs.ReadDirectory(dir, out IReadOnlyList<FsDirectoryEntry> entries));
        CollectionAssert.AreEqual(new[] { ".", ".." }, entries.Select(e => e.Name).ToArray(), "the hidden folder is never listed");
        Fs.ReleaseDirectory(dir);

        Assert.AreEqual(FsError.None, Fs.Release(a.Inode));
        Assert.AreEqual(FsError.None, Fs.Read(a.Inode, 0, buffer, out _), "still open once");
        Assert.AreEqual(FsError.None, Fs.Release(a.Inode));
        Assert.AreEqual(FsError.NotFound, Fs.GetAttributes(a.Inode, out _), "deleted at the last release");
        Assert.IsFalse(Directory.Exists(Path.Combine(_dir, "local", MirrorFileSystem.HiddenDirectory)), "the hidden folder goes away when empty");
    }

    [TestMethod]
    public void Rename_OverAnOpenFile_KeepsTheReplacedFileReadable()
    {
        Fs.Create(MirrorFileSystem.RootInode, "victim", (UnixFileMode)0b110_100_100, true, false, out FsAttributes victim);
        Fs.Write(victim.Inode, 0, "old"u8.ToArray());
        Fs.Create(MirrorFileSystem.RootInode, "new", (UnixFileMode)0b110_100_100, true, false, out FsAttributes replacement);
        Fs.Write(replacement.Inode, 0, "new!"u8.ToArray());
        Fs.Release(replacement.Inode);

        Assert.AreEqual(FsError.None, Fs.Rename(MirrorFileSystem.RootInode, "new", MirrorFileSystem.RootInode, "victim", 0));
        byte[] buffer = new byte[8];
        Assert.AreEqual(FsError.None, Fs.Read(victim.Inode, 0, buffer, out int n));
        Assert.AreEqual("old", Encoding.UTF8.GetString(buffer, 0, n), "the open handle still sees the replaced file");
        Assert.AreEqual(FsError.None, Fs.Lookup(MirrorFileSystem.RootInode, "victim", out FsAttributes now));
        Assert.AreEqual(replacement.Inode, now.Inode);
        Fs.Release(victim.Inode);
        Assert.AreEqual(FsError.NotFound, Fs.GetAttributes(victim.Inode, out _));
    }

    [TestMethod]
    public void Rename_WithNoReplace_RefusesAnExistingTarget_AndExchangeIsInvalid()
    {
        Fs.MakeNode(MirrorFileSystem.RootInode, "a", 0x8000 | 0b110_100_100, out _);
        Fs.MakeNode(MirrorFileSystem.RootInode, "b", 0x8000 | 0b110_100_100, out _);
        Assert.AreEqual(FsError.Exists, Fs.Rename(MirrorFileSystem.RootInode, "a", MirrorFileSystem.RootInode, "b", MirrorFileSystem.RenameNoReplace));
        Assert.AreEqual(FsError.InvalidArgument, Fs.Rename(MirrorFileSystem.RootInode, "a", MirrorFileSystem.RootInode, "b", MirrorFileSystem.RenameExchange));
        Assert.AreEqual(FsError.None, Fs.Rename(MirrorFileSystem.RootInode, "a", MirrorFileSystem.RootInode, "c", MirrorFileSystem.RenameNoReplace));
    }

    [TestMethod]
    public void Refusals_NameTheirErrors()
    {
        Assert.AreEqual(FsError.NotPermitted, Fs.MakeDirectory(MirrorFileSystem.RootInode, MirrorFileSystem.HiddenDirectory, (UnixFileMode)0b111_000_000, out _));
        Assert.AreEqual(FsError.NameTooLong, Fs.MakeDirectory(MirrorFileSystem.RootInode, new string('x', 256), (UnixFileMode)0b111_000_000, out _));
        Assert.AreEqual(FsError.NotPermitted, Fs.MakeNode(MirrorFileSystem.RootInode, "fifo", 0x1000, out _), "FIFOs are refused");
        Fs.MakeNode(MirrorFileSystem.RootInode, "f", 0x8000 | 0b110_100_100, out FsAttributes f);
        Assert.AreEqual(FsError.NotPermitted, Fs.SetAttributes(f.Inode, new SetAttributesRequest(null, null, 0, null, null, null), out _), "chown to another user");
        Assert.AreEqual(FsError.None, Fs.SetAttributes(f.Inode, new SetAttributesRequest(null, null, 1000, 1000, null, null), out _), "chown to the owner is a no-op");
        Assert.AreEqual(FsError.NotPermitted, MirrorFileSystem.Link());
        Assert.AreEqual(FsError.Exists, Fs.Create(MirrorFileSystem.RootInode, "f", (UnixFileMode)0b110_100_100, exclusive: true, truncate: false, out _));
        Fs.MakeDirectory(MirrorFileSystem.RootInode, "d", (UnixFileMode)0b111_101_101, out FsAttributes d);
        Fs.MakeNode(d.Inode, "inside", 0x8000 | 0b110_100_100, out _);
        Assert.AreEqual(FsError.NotEmpty, Fs.RemoveDirectory(MirrorFileSystem.RootInode, "d"));
        Assert.AreEqual(FsError.IsDirectory, Fs.Open(d.Inode, truncate: false));
        Assert.AreEqual(FsError.NotSupported, Fs.Allocate(f.Inode, 1, 0, 4096), "FALLOC_FL_KEEP_SIZE alone (reserving past the end)");
        Assert.AreEqual(FsError.NotSupported, Fs.Allocate(f.Inode, 2, 0, 4096), "FALLOC_FL_PUNCH_HOLE without FALLOC_FL_KEEP_SIZE");
        Assert.AreEqual(FsError.NotSupported, Fs.Allocate(f.Inode, 8, 0, 4096), "FALLOC_FL_COLLAPSE_RANGE");
        Assert.AreEqual(FsError.InvalidArgument, Fs.Allocate(f.Inode, 3, 0, 0), "an empty range");
        Assert.AreEqual(FsError.IsDirectory, Fs.Allocate(d.Inode, 3, 0, 4096), "a directory");
        Assert.AreEqual(FsError.None, Fs.Allocate(f.Inode, 0, 0, 1 << 20));
        Fs.GetAttributes(f.Inode, out FsAttributes grown);
        Assert.AreEqual(1 << 20, grown.Size, "fallocate mode 0 extends the length");
    }

    [TestMethod]
    public void Symlinks_AreStoredVerbatim()
    {
        Assert.AreEqual(FsError.None, Fs.Symlink(MirrorFileSystem.RootInode, "l", "../../outside/target", out FsAttributes l));
        Assert.AreEqual(NodeKind.Symlink, l.Kind);
        Assert.AreEqual(0xA000u, l.Mode & 0xF000);
        Assert.AreEqual(FsError.None, Fs.ReadLink(l.Inode, out string target));
        Assert.AreEqual("../../outside/target", target);
        Assert.AreEqual(FsError.NotFound, Fs.Symlink(MirrorFileSystem.RootInode, "empty", "", out _));
    }

    [TestMethod]
    public async Task CleanOrphans_DeletesWhatAKilledMountLeftHidden()
    {
        await _volume!.CreateDirectoryAsync(MirrorFileSystem.HiddenDirectory);
        long id = await _volume.CreateFileAsync(MirrorFileSystem.HiddenDirectory + "/42");
        await _volume.WriteAsync(id, 0, new byte[100]);
        await Fs.CleanOrphansAsync();
        Assert.IsNull(_volume.LookupId(MirrorFileSystem.HiddenDirectory));
        Assert.IsFalse(Directory.Exists(Path.Combine(_dir, "local", MirrorFileSystem.HiddenDirectory)));
    }
}
