using CloudMirrorFs.Storage;
using CloudMirrorFs.Tests.Support;

namespace CloudMirrorFs.Tests.Storage;

[TestClass]
public sealed class FolderHomeTests
{
    [TestMethod]
    public void MountPointOf_AFolderOnADisk_OrNotYetMadeThere_IsTheDisksMountPoint_AndTheOneBelowOnceUnmounted()
    {
        using var dir = new TempDir("home");
        string at = Path.Combine(dir.Path, "disk");
        using (var disk = new SmallDisk(4, at))
        {
            Directory.CreateDirectory(Path.Combine(at, "cmfs"));
            Assert.AreEqual(at, FolderHome.MountPointOf(Path.Combine(at, "cmfs")));
            Assert.AreEqual(at, FolderHome.MountPointOf(Path.Combine(at, "not", "made", "yet")), "a folder to be made is on its nearest existing parent's file system");
            Assert.AreEqual(at, FolderHome.MountPointOf(at));
        }
        string below = FolderHome.MountPointOf(Path.Combine(at, "cmfs"))!;
        Assert.IsTrue(FolderHome.IsStrictlyUnder(at, below), $"once unmounted, {at} is on the file system mounted at {below}, above it");
        var e = Assert.ThrowsExactly<MirrorException>(() => FolderHome.Verify(Path.Combine(at, "cmfs"), at, "facet 'local'"));
        Assert.AreEqual(MirrorError.Unavailable, e.Error);
        StringAssert.Contains(e.Message, $"was on the file system mounted at {at}, which is not mounted now");
    }

    [TestMethod]
    public void IsStrictlyUnder_ComparesWholeComponents()
    {
        Assert.IsTrue(FolderHome.IsStrictlyUnder("/mnt/disk", "/"));
        Assert.IsTrue(FolderHome.IsStrictlyUnder("/mnt/disk", "/mnt"));
        Assert.IsFalse(FolderHome.IsStrictlyUnder("/mnt/disk", "/mnt/disk"), "the same mount point");
        Assert.IsFalse(FolderHome.IsStrictlyUnder("/mnt/diskette", "/mnt/disk"), "a name that merely starts the same");
        Assert.IsFalse(FolderHome.IsStrictlyUnder("/", "/mnt/disk"), "a disk mounted deeper, on top of the old place: a new disk, not a missing one");
    }
}
