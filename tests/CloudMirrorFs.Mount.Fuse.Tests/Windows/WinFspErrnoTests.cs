using CloudMirrorFs.Mount.FileSystem;
using CloudMirrorFs.Mount.Windows;

namespace CloudMirrorFs.Mount.Tests.Windows;

/// <summary>The FsError → WinFsp errno mapping: MSVCRT values, each one WinFsp translates (src/dll/fuse/errno.i).</summary>
[TestClass]
public sealed class WinFspErrnoTests
{
    // The errno values errno.i maps for a native Windows program ('W'); anything else becomes STATUS_ACCESS_DENIED.
    private static readonly HashSet<int> KnownToWinFsp =
    [
        1, 2, 3, 4, 5, 6, 7, 8, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21, 22, 23, 24, 27, 28, 29, 30, 31, 32, 33, 34, 36, 38,
        39, 40, 41, 42, 100, 103, 105, 106, 107, 108, 110, 113, 114, 116, 117, 118, 119, 120, 121, 126, 128, 138,
    ];

    [TestMethod]
    public void From_EveryError_IsAnErrnoWinFspTranslates()
    {
        foreach (FsError e in Enum.GetValues<FsError>().Where(e => e != FsError.None))
        {
            Assert.IsTrue(KnownToWinFsp.Contains(WinFspErrno.From(e)), $"{e} -> {WinFspErrno.From(e)}");
        }
        Assert.AreEqual(0, WinFspErrno.From(FsError.None));
    }

    [TestMethod]
    public void From_UsesTheMsvcrtNumbersNotLinuxs()
    {
        Assert.AreEqual(41, WinFspErrno.From(FsError.NotEmpty), "ENOTEMPTY is 41 on Windows (39 on Linux)");
        Assert.AreEqual(38, WinFspErrno.From(FsError.NameTooLong), "ENAMETOOLONG is 38 on Windows (36 on Linux)");
        Assert.AreEqual(40, WinFspErrno.From(FsError.NotSupported), "ENOSYS: STATUS_INVALID_DEVICE_REQUEST");
        Assert.AreEqual(2, WinFspErrno.From(FsError.NotFound));
        Assert.AreEqual(17, WinFspErrno.From(FsError.Exists));
        Assert.AreEqual(1, WinFspErrno.From(FsError.NotPermitted));
        Assert.AreEqual(5, WinFspErrno.From(FsError.IoError));
        Assert.AreEqual(30, WinFspErrno.From(FsError.ReadOnly));
        Assert.AreEqual(28, WinFspErrno.From(FsError.NoSpace));
    }
}
