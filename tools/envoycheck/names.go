package main

import "google.golang.org/protobuf/reflect/protoreflect"

type protoMethods = protoreflect.MethodDescriptors

func protoreflectName(s string) protoreflect.FullName { return protoreflect.FullName(s) }
