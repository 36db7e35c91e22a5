using CloudMirrorFs.Host;

using var cancel = new CancellationTokenSource();
Console.CancelKeyPress += (_, e) =>
{
    e.Cancel = true;
    cancel.Cancel();
};
return await CmfsCli.RunAsync(args, Console.Out, Console.Error, Environment.CurrentDirectory, cancel.Token);
