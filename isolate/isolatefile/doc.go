// Package isolatefile reads the .isolate files users write to say what a
// task's inputs are: JSON or the Python-literal form (pprint's, which Kudu
// and grind write), with luci's conditions, variables and includes. Load
// gives the command and the files to archive; it reads no file it lists.
package isolatefile
